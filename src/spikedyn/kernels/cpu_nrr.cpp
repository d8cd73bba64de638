// The time loops of NRR-SNN's recurrent cell (spikedyn.neurons.adaptive) for CPU tensors, compiled once
// on first use by spikedyn.kernels.cpu (torch.utils.cpp_extension).  Per step: the recurrent product
// through ATen (the same addmm / mm calls, in the same layout, as the PyTorch loop in _NRRSequence)
// and ONE pass over the B*N elements for all the elementwise work of the step, instead of eight
// separate tensor operations.  Built with -ffp-contract=off: every product and sum is rounded on its
// own, in the order of the reference step nrr_step, so the forward gives the reference's spikes.
//
// Forward, one step (a_0 = V_0 = S_0 = 0; see the Python module for the equations):
//   a_t   = alpha a_{t-1} + beta S_{t-1}
//   V^f_t = (lambda V_{t-1}) (1 - S_{t-1}) + z^f_t - gamma a_t
//   V^r_t = b_r + W~_r S_{t-1}                  (two channels: own threshold; merged: added to V^f_t)
//   S_t   = [V^f_t > V_th] + [V^r_t > V_th]     (merged: [V^f_t + V^r_t > V_th])
// Backward: the recursion of _NRRSequence.backward through time, dL/dV overwriting the surrogate
// derivatives in place.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros_like.h>
#include <torch/library.h>

#include "cpu_common.h"

namespace {

using spikedyn_cpu::kGrain;  // a step of a typical recurrent layer is one serial pass

// -- one step's elementwise work, in pieces the compiler vectorises (no aliasing: __restrict__) --------------
template <typename T>
void copy_n(const T* __restrict__ z, T* __restrict__ vf, int64_t m) {
  for (int64_t i = 0; i < m; ++i) vf[i] = z[i];
}

// V^f = z + (lambda V_{t-1}) (1 - S_{t-1}), rounded as addcmul(z, V, 1 - S, value=lambda)
template <typename T>
void membrane(const T* __restrict__ z, const T* __restrict__ vp, const T* __restrict__ sp, T* __restrict__ vf,
              int64_t m, T lam) {
  for (int64_t i = 0; i < m; ++i) {
    const T u = T(1) - sp[i];
    const T carried = (lam * vp[i]) * u;
    vf[i] = z[i] + carried;
  }
}

// the same, then a_t = alpha a_{t-1} + beta S_{t-1} and V^f -= gamma a_t
template <typename T>
void membrane_trace(const T* __restrict__ z, const T* __restrict__ vp, const T* __restrict__ sp, T* __restrict__ a,
                    T* __restrict__ vf, int64_t m, T lam, T al, T be, T ga, bool unit_gamma) {
  if (unit_gamma) {
    for (int64_t i = 0; i < m; ++i) {
      const T u = T(1) - sp[i];
      const T carried = (lam * vp[i]) * u;
      const T next_a = al * a[i] + be * sp[i];
      a[i] = next_a;
      vf[i] = (z[i] + carried) - next_a;
    }
  } else {
    for (int64_t i = 0; i < m; ++i) {
      const T u = T(1) - sp[i];
      const T carried = (lam * vp[i]) * u;
      const T next_a = al * a[i] + be * sp[i];
      a[i] = next_a;
      vf[i] = (z[i] + carried) - next_a * ga;
    }
  }
}

template <typename T>
void fire(const T* __restrict__ v, T* __restrict__ s, int64_t m, T th) {
  for (int64_t i = 0; i < m; ++i) s[i] = v[i] > th ? T(1) : T(0);
}

// NRR's two channels: S = [V^f > th] + [V^r > th], and the total V = V^f + V^r for the next step
template <typename T>
void fire_two(const T* __restrict__ vf, const T* __restrict__ vr, T* __restrict__ s, T* __restrict__ v, int64_t m,
              T th) {
  for (int64_t i = 0; i < m; ++i) {
    s[i] = (vf[i] > th ? T(1) : T(0)) + (vr[i] > th ? T(1) : T(0));
    v[i] = vf[i] + vr[i];
  }
}

// the recurrent input into the membrane: V += W~_r S_{t-1} + b_r, one threshold
template <typename T>
void add_and_fire(T* __restrict__ v, const T* __restrict__ r, T* __restrict__ s, int64_t m, T th) {
  for (int64_t i = 0; i < m; ++i) {
    const T total = v[i] + r[i];
    v[i] = total;
    s[i] = total > th ? T(1) : T(0);
  }
}

// -- backward pieces ------------------------------------------------------------------------------------------
template <typename T>
void scale(T* __restrict__ g, const T* __restrict__ by, int64_t m) {
  for (int64_t i = 0; i < m; ++i) g[i] = g[i] * by[i];
}

// dL/dS_t = dL/dS_t|own + (-lambda V_t) dL/dV^f_{t+1} [- gamma beta h_{t+1}]   (+ W~_r^T dL/dV^r_{t+1}, by ATen)
template <typename T>
void spike_grad(const T* __restrict__ own, const T* __restrict__ v, const T* __restrict__ g_next,
                const T* __restrict__ h, T* __restrict__ out, int64_t m, T neg_lam, T trace_w) {
  if (h == nullptr) {
    for (int64_t i = 0; i < m; ++i) out[i] = own[i] + (neg_lam * v[i]) * g_next[i];
  } else {
    for (int64_t i = 0; i < m; ++i) out[i] = (own[i] + (neg_lam * v[i]) * g_next[i]) + trace_w * h[i];
  }
}

// dL/dV_t = lambda (1 - S_t) dL/dV^f_{t+1} + sg_t dL/dS_t, for V^f (and V^r: the same membrane term)
template <typename T>
void potential_grad(const T* __restrict__ keep, const T* __restrict__ g_next, const T* __restrict__ g_spk,
                    T* __restrict__ gf, T* __restrict__ gr, int64_t m) {
  if (gr == nullptr) {
    for (int64_t i = 0; i < m; ++i) gf[i] = keep[i] * g_next[i] + gf[i] * g_spk[i];
  } else {
    for (int64_t i = 0; i < m; ++i) {
      const T g_mem = keep[i] * g_next[i];
      gf[i] = g_mem + gf[i] * g_spk[i];
      gr[i] = g_mem + gr[i] * g_spk[i];
    }
  }
}

// h_t = dL/dV^f_t + alpha h_{t+1}
template <typename T>
void trace_grad(const T* __restrict__ gf, T* __restrict__ h, int64_t m, T al) {
  for (int64_t i = 0; i < m; ++i) h[i] = gf[i] + al * h[i];
}

void check_window(const at::Tensor& x, const char* name, int64_t dims) {
  TORCH_CHECK(x.device().is_cpu(), "spikedyn CPU kernel: ", name, " must be a CPU tensor");
  TORCH_CHECK(x.is_contiguous(), "spikedyn CPU kernel: ", name, " must be contiguous");
  TORCH_CHECK(x.dim() == dims, "spikedyn CPU kernel: ", name, " must have ", dims, " dimensions, got ", x.dim());
}

// pot [C, T, B, N] (C = 2: [V^f; V^r]; C = 1: the one membrane), s [T, B, N]; w_t = (W_r * M)^T [N, N]
void nrr_forward(const at::Tensor& zf, const std::optional<at::Tensor>& w_t, const std::optional<at::Tensor>& b,
                 const at::Tensor& pot, const at::Tensor& s, double decay, double v_th, double alpha, double beta,
                 double gamma, bool two) {
  check_window(zf, "zf", 3);
  check_window(pot, "pot", 4);
  check_window(s, "s", 3);
  const int64_t T = zf.size(0), n = zf.size(1) * zf.size(2);
  const bool has_w = w_t.has_value() && w_t->defined(), has_b = b.has_value() && b->defined();
  const bool recurrent = has_w || has_b;
  const bool biased_window = two && has_w && has_b;
  at::Tensor v_total = two ? at::empty_like(zf[0]) : at::Tensor();  // V_t = V^f_t + V^r_t
  at::Tensor rec_buf = (recurrent && !two) ? at::empty_like(zf[0]) : at::Tensor();
  at::Tensor a = at::zeros_like(zf[0]);
  if (biased_window) pot[1].copy_(b->expand_as(pot[1]));
  AT_DISPATCH_FLOATING_TYPES(zf.scalar_type(), "nrr_forward", [&] {
    const scalar_t lam = static_cast<scalar_t>(decay), th = static_cast<scalar_t>(v_th);
    const scalar_t al = static_cast<scalar_t>(alpha), be = static_cast<scalar_t>(beta);
    const scalar_t ga = static_cast<scalar_t>(gamma), one = 1;
    const bool trace = gamma != 0.0, unit_gamma = gamma == 1.0;
    scalar_t* A = a.data_ptr<scalar_t>();
    scalar_t* VT = two ? v_total.data_ptr<scalar_t>() : nullptr;
    for (int64_t t = 0; t < T; ++t) {
      at::Tensor r;
      if (recurrent) {
        r = two ? pot[1][t] : rec_buf;
        if (biased_window) {
          if (t > 0) r.addmm_(s[t - 1], *w_t);
        } else if (!has_w || t == 0) {
          if (has_b) r.copy_(b->expand_as(r)); else r.zero_();
        } else if (!has_b) {
          at::mm_out(r, s[t - 1], *w_t);
        } else {
          at::addmm_out(r, *b, s[t - 1], *w_t);
        }
      }
      const scalar_t* Z = zf.data_ptr<scalar_t>() + t * n;
      const scalar_t* SP = t > 0 ? s.data_ptr<scalar_t>() + (t - 1) * n : nullptr;
      // the previous step's total potential: V_{t-1} (two channels: the sum; else the membrane itself)
      const scalar_t* VP = t == 0 ? nullptr : (two ? VT : pot.data_ptr<scalar_t>() + (t - 1) * n);
      scalar_t* VF = pot.data_ptr<scalar_t>() + t * n;
      scalar_t* S = s.data_ptr<scalar_t>() + t * n;
      const scalar_t* R = recurrent ? r.data_ptr<scalar_t>() : nullptr;
      at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
        const int64_t m = end - begin;
        if (t == 0) {
          copy_n(Z + begin, VF + begin, m);
        } else if (!trace) {
          membrane(Z + begin, VP + begin, SP + begin, VF + begin, m, lam);
        } else {
          membrane_trace(Z + begin, VP + begin, SP + begin, A + begin, VF + begin, m, lam, al, be, ga, unit_gamma);
        }
        if (!recurrent) {
          fire(VF + begin, S + begin, m, th);
        } else if (two) {
          fire_two(VF + begin, R + begin, S + begin, VT + begin, m, th);
        } else {
          add_and_fire(VF + begin, R + begin, S + begin, m, th);
        }
      });
    }
  });
}

// gv [C, T, B, N]: dS/dV of every channel on entry, dL/dV on return.  keeps [T-1, B, N] = lambda (1 - S_t);
// vs [T, B, N] = V_t (BPTT only); w = W_r * M [N, N] (BPTT only)
void nrr_backward(const at::Tensor& gv, const at::Tensor& grad_s, const at::Tensor& keeps,
                  const std::optional<at::Tensor>& vs, const std::optional<at::Tensor>& w, double decay, double alpha,
                  double beta, double gamma, bool two, bool detach_prev) {
  check_window(gv, "gv", 4);
  check_window(grad_s, "grad_s", 3);
  const int64_t T = grad_s.size(0), n = grad_s.size(1) * grad_s.size(2);
  const bool has_w = !detach_prev && w.has_value() && w->defined();
  const bool with_trace = !detach_prev && gamma != 0.0;
  TORCH_CHECK(detach_prev || (vs.has_value() && vs->defined()), "nrr_backward: BPTT needs the potentials vs");
  if (T > 1) check_window(keeps, "keeps", 3);
  at::Tensor g_spk = at::empty_like(grad_s[0]);
  at::Tensor h = at::empty_like(grad_s[0]);
  const int64_t channel = T * n;  // offset of V^r's gradient in gv
  AT_DISPATCH_FLOATING_TYPES(gv.scalar_type(), "nrr_backward", [&] {
    const scalar_t neg_lam = static_cast<scalar_t>(-decay), al = static_cast<scalar_t>(alpha);
    const scalar_t trace_w = static_cast<scalar_t>(-gamma * beta);
    scalar_t* G = gv.data_ptr<scalar_t>();
    const scalar_t* GS = grad_s.data_ptr<scalar_t>();
    scalar_t* GSPK = g_spk.data_ptr<scalar_t>();
    scalar_t* H = h.data_ptr<scalar_t>();
    scalar_t* GR = two ? G + channel : nullptr;  // dL/dV^r
    at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
      const int64_t m = end - begin, last = (T - 1) * n + begin;
      scale(G + last, GS + last, m);
      if (two) scale(GR + last, GS + last, m);
      if (with_trace) copy_n(G + last, H + begin, m);
    });
    for (int64_t t = T - 2; t >= 0; --t) {
      const int64_t at_t = t * n, at_next = (t + 1) * n;
      if (!detach_prev) {
        const scalar_t* V = vs->data_ptr<scalar_t>();
        at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
          spike_grad(GS + at_t + begin, V + at_t + begin, G + at_next + begin, with_trace ? H + begin : nullptr,
                     GSPK + begin, end - begin, neg_lam, trace_w);
        });
        if (has_w) g_spk.addmm_(gv[two ? 1 : 0][t + 1], *w);
      }
      const scalar_t* K = keeps.data_ptr<scalar_t>() + at_t;
      const scalar_t* GV = detach_prev ? GS + at_t : GSPK;  // dL/dS_t
      at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
        const int64_t m = end - begin;
        potential_grad(K + begin, G + at_next + begin, GV + begin, G + at_t + begin, two ? GR + at_t + begin : nullptr,
                       m);
        if (with_trace) trace_grad(G + at_t + begin, H + begin, m, al);
      });
    }
  });
}

}  // namespace

TORCH_LIBRARY(spikedyn_cpu, m) {
  m.def(
      "nrr_forward(Tensor zf, Tensor? w_t, Tensor? b, Tensor(a!) pot, Tensor(b!) s, float decay, float v_th, "
      "float alpha, float beta, float gamma, bool two) -> ()");
  m.def(
      "nrr_backward(Tensor(a!) gv, Tensor grad_s, Tensor keeps, Tensor? vs, Tensor? w, float decay, float alpha, "
      "float beta, float gamma, bool two, bool detach_prev) -> ()");
}

TORCH_LIBRARY_IMPL(spikedyn_cpu, CPU, m) {
  m.impl("nrr_forward", &nrr_forward);
  m.impl("nrr_backward", &nrr_backward);
}
