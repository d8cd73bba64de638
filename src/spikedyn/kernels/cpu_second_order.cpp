// The time loops of MDN's second-order neuron (spikedyn.neurons.second_order) for CPU tensors, compiled
// once on first use by spikedyn.kernels.cpu: one pass over the layer's elements a step (split between
// threads for large layers) instead of one PyTorch operation per term; -ffp-contract=off keeps the
// rounding of the PyTorch loop in _SecondOrderSequence term for term, so both give the same spikes.
// With the sigmoid input function inside (sigmoid_input) the current I_t = sigmoid(Z_t) is computed in the
// same pass (spikedyn_cpu::sigmoid, a few ulp from torch.sigmoid's rounding, which the spikes do not see
// on the tests' inputs) instead of a pass of its own over the window.
//
// theta = (a, b, c, d) per neuron, flattened to P values that repeat along the step's n = (n / P) * P
// elements (P = n with batch slots); the loops take 1 - a and a b as the PyTorch loop computes them.
//   V'_t = V_{t-1} - S_{t-1} (V_{t-1} - c),  U'_t = U_{t-1} + S_{t-1} d       (V'_0 = v0, U'_0 = u0)
//   V_t  = (I_t + V'_t V'_t) - U'_t,          U_t = U'_t (1 - a) + V'_t (a b),   S_t = [V_t > V_th]
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <vector>

#include "cpu_common.h"

namespace {

using spikedyn_cpu::check;
using spikedyn_cpu::sigmoid;
using spikedyn_cpu::surrogate_grad;

using spikedyn_cpu::blocks;  // a step's neurons by threads and blocks, theta at the neuron index modulo P

// The recursion's terms, shared by the forward, the rebuild of U and the backward, so that all three round alike:
// V'_t = V_{t-1} - S_{t-1} (V_{t-1} - c),  U'_t = U_{t-1} + S_{t-1} d,  U_t = U'_t (1 - a) + V'_t (a b)
inline float post_reset_v(float vprev, float sp, float c) { return vprev - (vprev - c) * sp; }
inline float post_reset_u(float uprev, float sp, float d) { return uprev + sp * d; }
inline float next_u(float up, float vp, float oma, float ab) { return up * oma + vp * ab; }

// cur and s may be the same buffer (the layer's inplace option: S_t written over I_t once it is read);
// Sig: cur holds Z_t and the current is I_t = sigmoid(Z_t)
template <bool First, bool Sig>
void forward_step(const float* cur, const float* __restrict__ vprev, const float* __restrict__ uprev,
                  const float* __restrict__ c, const float* __restrict__ d,
                  const float* __restrict__ oma, const float* __restrict__ ab, float* __restrict__ v,
                  float* __restrict__ u, float* s, int64_t m, float v0, float u0, float th) {
  for (int64_t i = 0; i < m; ++i) {
    float vp = v0, up = u0;
    if (!First) {
      const float sp = vprev[i] > th ? 1.0f : 0.0f;  // S_{t-1}, not read back from the window
      vp = post_reset_v(vprev[i], sp, c[i]);
      up = post_reset_u(uprev[i], sp, d[i]);
    }
    const float current = Sig ? sigmoid(cur[i]) : cur[i];
    const float vn = (current + vp * vp) - up;
    v[i] = vn;
    u[i] = next_u(up, vp, oma[i], ab[i]);
    s[i] = vn > th ? 1.0f : 0.0f;
  }
}

// u has T rows (keep_u: backward needs every U for theta's gradient) or 2 (U_t in row t % 2); sigmoid_input:
// current is Z, the input current I = sigmoid(Z)
template <bool Sig>
void forward_loops(const float* I, const float* C, const float* D, const float* OMA, const float* AB, float* V,
                   float* U, float* S, int64_t T, int64_t n, int64_t P, int64_t slots, float fv0, float fu0, float th) {
  blocks(n, P, [&](int64_t i, int64_t j, int64_t m) {
    for (int64_t t = 0; t < T; ++t) {
      const int64_t uo = (t % slots) * n, upo = ((t + slots - 1) % slots) * n;
      const int64_t o = t * n + i;
      if (t == 0) {
        forward_step<true, Sig>(I + o, nullptr, nullptr, C + j, D + j, OMA + j, AB + j, V + o, U + uo + i, S + o,
                                m, fv0, fu0, th);
      } else {
        forward_step<false, Sig>(I + o, V + o - n, U + upo + i, C + j, D + j, OMA + j, AB + j, V + o,
                                 U + uo + i, S + o, m, fv0, fu0, th);
      }
    }
  });
}

void second_order_forward(const at::Tensor& current, bool sigmoid_input, const at::Tensor& c, const at::Tensor& d,
                          const at::Tensor& one_minus_a, const at::Tensor& ab, const at::Tensor& v,
                          const at::Tensor& u, const at::Tensor& s, double v0, double u0, double v_th) {
  check(current, "current");
  check(v, "v");
  check(u, "u");
  check(s, "s");
  for (const auto* p : {&c, &d, &one_minus_a, &ab}) check(*p, "theta");
  const int64_t T = current.size(0), n = current.numel() / T, P = c.numel();
  TORCH_CHECK(n % P == 0, "second_order_forward: theta's ", P, " values do not tile a step of ", n, " elements");
  const int64_t slots = u.size(0);
  const float fv0 = static_cast<float>(v0), fu0 = static_cast<float>(u0), th = static_cast<float>(v_th);
  const float* I = current.data_ptr<float>();
  const float *C = c.data_ptr<float>(), *D = d.data_ptr<float>();
  const float *OMA = one_minus_a.data_ptr<float>(), *AB = ab.data_ptr<float>();
  float* V = v.data_ptr<float>();
  float* U = u.data_ptr<float>();
  float* S = s.data_ptr<float>();
  if (sigmoid_input) {
    forward_loops<true>(I, C, D, OMA, AB, V, U, S, T, n, P, slots, fv0, fu0, th);
  } else {
    forward_loops<false>(I, C, D, OMA, AB, V, U, S, T, n, P, slots, fv0, fu0, th);
  }
}

// One step back.  In: V_t in g (overwritten with dL/dV_t = dL/dI_t, or dL/dZ with Sig), V_{t-1}; dL/dV'_{t+1}
// and dL/dU'_{t+1} (= dL/dU_t) in gvpn / gun (Last: none); U_{t-1} in uprev where U'_t is needed (theta's
// gradient, Sig).  Out: dL/dV'_t, dL/dU'_t into gvp / gup; with Theta, theta's gradient added into the block's
// per-element sums over the steps (acc rows a, b / a, c, d, float: b's factor a is applied by the caller).
// Sig: the current was I = sigmoid(Z), and I_t is solved from V_t = (I_t + V'_t V'_t) - U'_t, which the forward
// rounded once (equal to within that rounding; the derivative I (1 - I) needs no more).
template <int Kind, bool Last, bool First, bool Theta, bool Sig>
void backward_step(float* __restrict__ g, const float* __restrict__ gs, const float* __restrict__ vprev,
                   const float* __restrict__ uprev, const float* __restrict__ gvpn, const float* __restrict__ gun,
                   float* __restrict__ gvp, float* __restrict__ gup, const float* __restrict__ b,
                   const float* __restrict__ c, const float* __restrict__ d, const float* __restrict__ oma,
                   const float* __restrict__ ab, float* __restrict__ acc0, float* __restrict__ acc1,
                   float* __restrict__ acc2, float* __restrict__ acc3, int64_t m, float v0, float u0, float th,
                   float p0, float p1) {
  for (int64_t i = 0; i < m; ++i) {
    const float vt = g[i];
    const float st_i = vt > th ? 1.0f : 0.0f;  // S_t and S_{t-1} are [V > V_th]: not read back from the window
    const float sp = First ? 0.0f : (vprev[i] > th ? 1.0f : 0.0f);
    const float sg = surrogate_grad<Kind>(vt - th, p0, p1);
    float gv;
    if (Last) {
      gv = sg * gs[i];
    } else {
      // S_t enters V'_{t+1} = V_t - S_t (V_t - c) and U'_{t+1} = U_t + d S_t
      const float g_spk = (gs[i] + gvpn[i] * (c[i] - vt)) + gun[i] * d[i];
      gv = (sg * g_spk + gvpn[i]) - gvpn[i] * st_i;
    }
    const float vp = First ? v0 : post_reset_v(vprev[i], sp, c[i]);
    float up = u0;  // U'_t
    if constexpr (!First && (Sig || (Theta && !Last))) up = post_reset_u(uprev[i], sp, d[i]);
    if constexpr (Sig) {
      const float current = (vt + up) - vp * vp;  // I_t
      g[i] = gv * (current * (1.0f - current));   // dL/dZ
    } else {
      g[i] = gv;
    }
    if constexpr (Theta && !Last) {
      acc0[i] += (vp * b[i] - up) * gun[i];  // dU_t/da = b V' - U'
      acc1[i] += vp * gun[i];                 // dU_t/db = a V'
      acc2[i] += gvpn[i] * st_i;              // dV'_{t+1}/dc = S_t
      acc3[i] += gun[i] * st_i;               // dU'_{t+1}/dd = S_t
    }
    // V_t = V'^2 - U' + I ;  U_t = (1 - a) U' + a b V'
    float g_vp = (gv * vp) * 2.0f, g_up = -gv;
    if (!Last) {
      g_vp = g_vp + gun[i] * ab[i];
      g_up = g_up + gun[i] * oma[i];
    }
    gvp[i] = g_vp;
    gup[i] = g_up;
  }
}

// One step of rebuild_u: U_t over m elements from V_{t-1} and U_{t-1} (First: v0, u0), as forward_step computes it.
template <bool First>
void rebuild_u_step(const float* __restrict__ vprev, const float* __restrict__ uprev, const float* __restrict__ c,
                    const float* __restrict__ d, const float* __restrict__ oma, const float* __restrict__ ab,
                    float* __restrict__ u, int64_t m, float v0, float u0, float th) {
  for (int64_t k = 0; k < m; ++k) {
    float vp = v0, up = u0;
    if (!First) {
      const float sp = vprev[k] > th ? 1.0f : 0.0f;
      vp = post_reset_v(vprev[k], sp, c[k]);
      up = post_reset_u(uprev[k], sp, d[k]);
    }
    u[k] = next_u(up, vp, oma[k], ab[k]);
  }
}

// U_t of a block [i, i + m) for every step, rebuilt from the saved V as the forward computed it (the same
// expressions, so the same bits): row t of out (m values) is U_t.  Lets the forward keep U in two rolling slots
// even when theta's gradient or the sigmoid input's I needs every U_{t-1}.
void rebuild_u(const float* V, const float* C, const float* D, const float* OMA, const float* AB, float* out,
               int64_t T, int64_t n, int64_t i, int64_t j, int64_t m, float v0, float u0, float th) {
  for (int64_t t = 0; t < T; ++t) {
    if (t == 0) {
      rebuild_u_step<true>(nullptr, nullptr, C + j, D + j, OMA + j, AB + j, out, m, v0, u0, th);
    } else {
      rebuild_u_step<false>(V + (t - 1) * n + i, out + (t - 1) * m, C + j, D + j, OMA + j, AB + j, out + t * m, m,
                            v0, u0, th);
    }
  }
}

template <int Kind>
void backward_kind(float* V, bool sig, const float* GS, const float* B,
                   const float* C, const float* D, const float* OMA, const float* AB, double* ACC, float* GVP,
                   float* GUP, int64_t T, int64_t n, int64_t P, float v0, float u0, float th, float p0, float p1) {
  const bool theta = ACC != nullptr;
  blocks(n, P, [&](int64_t i, int64_t j, int64_t m) {
    // per thread, reused by its blocks (grown, never shrunk or cleared): this block's U_t for every t (the
    // forward keeps only two slots), and its sums of theta's gradient over the steps, per element, in float
    thread_local std::vector<float> rebuilt, sums;
    const bool rebuild = theta || sig;  // U'_t is needed
    if (rebuild) {
      if (rebuilt.size() < static_cast<size_t>(T * m)) rebuilt.resize(static_cast<size_t>(T * m));
      rebuild_u(V, C, D, OMA, AB, rebuilt.data(), T, n, i, j, m, v0, u0, th);  // before V is overwritten
    }
    float *a0 = nullptr, *a1 = nullptr, *a2 = nullptr, *a3 = nullptr;
    if (theta) {
      if (sums.size() < static_cast<size_t>(4 * m)) sums.resize(static_cast<size_t>(4 * m));
      std::fill(sums.begin(), sums.begin() + 4 * m, 0.0f);
      a0 = sums.data();
      a1 = a0 + m;
      a2 = a1 + m;
      a3 = a2 + m;
    }
    for (int64_t t = T - 1; t >= 0; --t) {
      const int64_t cur = (t % 2) * n, nxt = ((t + 1) % 2) * n;
      const int64_t o = t * n + i, op = o - n;
      const bool last = t == T - 1, first = t == 0;
      const float* uprev = rebuild && !first ? rebuilt.data() + (t - 1) * m : nullptr;
#define SPIKEDYN_SO_STEP(LAST, FIRST, THETA, SIG)                                                                   \
  backward_step<Kind, LAST, FIRST, THETA, SIG>(V + o, GS + o, FIRST ? nullptr : V + op, uprev, GVP + nxt + i,       \
                                               GUP + nxt + i, GVP + cur + i, GUP + cur + i, B + j, C + j, D + j,    \
                                               OMA + j, AB + j, a0, a1, a2, a3, m, v0, u0, th, p0, p1)
#define SPIKEDYN_SO_STEPS(THETA, SIG)                          \
  if (last && first) SPIKEDYN_SO_STEP(true, true, THETA, SIG); \
  else if (last) SPIKEDYN_SO_STEP(true, false, THETA, SIG);    \
  else if (first) SPIKEDYN_SO_STEP(false, true, THETA, SIG);   \
  else SPIKEDYN_SO_STEP(false, false, THETA, SIG)
      if (theta && sig) {
        SPIKEDYN_SO_STEPS(true, true);
      } else if (theta) {
        SPIKEDYN_SO_STEPS(true, false);
      } else if (sig) {
        SPIKEDYN_SO_STEPS(false, true);
      } else {
        SPIKEDYN_SO_STEPS(false, false);
      }
#undef SPIKEDYN_SO_STEPS
#undef SPIKEDYN_SO_STEP
    }
    if (theta) {  // into this thread's sums [4, P] in float64, at the block's neurons (samples share them)
      double* own = ACC + static_cast<int64_t>(at::get_thread_num()) * 4 * P + j;
      for (int r = 0; r < 4; ++r) {
        const float* from = sums.data() + r * m;
        double* to = own + r * P;
        for (int64_t k = 0; k < m; ++k) to[k] += static_cast<double>(from[k]);
      }
    }
  });
}

// v [T, ...]: the saved V on entry, dL/dI on return (written over V, from the last step back; S_t = [V_t > V_th]
// is recomputed, not read), or dL/dZ with sigmoid_input (the current was I = sigmoid(Z); I_t is solved from the
// state, not kept).  U is rebuilt from V per block where it is needed (theta's gradient, sigmoid_input); acc
// [threads, 4, P] float64 zeros (each thread's sums of theta's gradient over its samples and steps, P the values
// of one theta row), or empty for no theta gradient.
void second_order_backward(const at::Tensor& v, bool sigmoid_input, const at::Tensor& grad_s,
                           const at::Tensor& b, const at::Tensor& c, const at::Tensor& d,
                           const at::Tensor& one_minus_a, const at::Tensor& ab, const at::Tensor& acc, double v0,
                           double u0, double v_th, int64_t kind, double p0, double p1) {
  check(v, "v");
  check(grad_s, "grad_s");
  for (const auto* p : {&b, &c, &d, &one_minus_a, &ab}) check(*p, "theta");
  const int64_t T = v.size(0), n = v.numel() / T, P = c.numel();
  TORCH_CHECK(n % P == 0, "second_order_backward: theta's ", P, " values do not tile a step of ", n, " elements");
  const bool theta = acc.numel() > 0;
  if (theta) {
    TORCH_CHECK(acc.device().is_cpu() && acc.is_contiguous() && acc.scalar_type() == at::kDouble,
                "second_order_backward: acc must be a contiguous float64 CPU tensor");
    TORCH_CHECK(acc.dim() == 3 && acc.size(0) >= at::get_num_threads() && acc.size(1) == 4 && acc.size(2) == P,
                "second_order_backward: acc must be [threads, 4, theta's values] zeros (threads >= ",
                at::get_num_threads(), ")");
  }
  at::Tensor gvp = at::empty({2, n}, v.options()), gup = at::empty({2, n}, v.options());
  double* ACC = theta ? acc.data_ptr<double>() : nullptr;
  const float fv0 = static_cast<float>(v0), fu0 = static_cast<float>(u0), th = static_cast<float>(v_th);
  const float a0 = static_cast<float>(p0), a1 = static_cast<float>(p1);
  spikedyn_cpu::with_surrogate(kind, "second_order_backward", [&](auto k) {
    backward_kind<decltype(k)::value>(v.data_ptr<float>(), sigmoid_input, grad_s.data_ptr<float>(), b.data_ptr<float>(), c.data_ptr<float>(),
                                      d.data_ptr<float>(), one_minus_a.data_ptr<float>(), ab.data_ptr<float>(), ACC,
                                      gvp.data_ptr<float>(), gup.data_ptr<float>(), T, n, P, fv0, fu0, th, a0, a1);
  });
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(spikedyn_cpu, m) {
  m.def(
      "second_order_forward(Tensor current, bool sigmoid_input, Tensor c, Tensor d, Tensor one_minus_a, Tensor ab, Tensor(a!) v, "
      "Tensor(b!) u, Tensor(c!) s, float v0, float u0, float v_th) -> ()");
  m.def(
      "second_order_backward(Tensor(a!) v, bool sigmoid_input, Tensor grad_s, Tensor b, Tensor c, Tensor d, "
      "Tensor one_minus_a, Tensor ab, Tensor(b!) acc, float v0, float u0, float v_th, int kind, float p0, "
      "float p1) -> ()");
}

TORCH_LIBRARY_IMPL(spikedyn_cpu, CPU, m) {
  m.impl("second_order_forward", &second_order_forward);
  m.impl("second_order_backward", &second_order_backward);
}
