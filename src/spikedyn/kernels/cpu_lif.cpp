// The time loops of the LIF families (spikedyn.neurons.lif) for CPU tensors, compiled once on first use by
// spikedyn.kernels.cpu.  Each step is ONE pass over the layer's elements (split between threads for large
// layers), instead of one PyTorch operation per elementwise term; built with -ffp-contract=off so that the
// forward rounds in the order of the reference steps (decay_lif_step, plif_step) and gives their spikes.
//
// decay-LIF:  V_t = (lambda V_{t-1}) [V_{t-1} <= V_th] + I_t,   S_t = [V_t > V_th]
//   (the reset flag 1 - S_{t-1} written as the comparison, so that a NaN V_{t-1} keeps propagating);
//   with the sigmoid input function inside (sigmoid_input) I_t = sigmoid(Z_t) is computed in the same pass
//   (spikedyn_cpu::sigmoid) and not kept: the backward solves it from V_t and V_{t-1}
// PLIF / LIF-tau:  D_t = X_t - V_{t-1} (+ V_reset),  H_t = V_{t-1} + D_t k,  S_t = [H_t >= V_th],
//   V_t = H_t + (-H_t) S_t (+ V_reset S_t)
#include <torch/library.h>

#include <vector>

#include "cpu_common.h"

namespace {

using spikedyn_cpu::check;
using spikedyn_cpu::kBlock;
using spikedyn_cpu::sigmoid;
using spikedyn_cpu::surrogate_grad;

// the whole time loop over blocks of elements [b, e) (see spikedyn_cpu::blocks; no per-neuron parameters)
template <typename F>
void over(int64_t n, const F& body) {
  spikedyn_cpu::blocks(n, n, [&](int64_t i, int64_t, int64_t m) { body(i, i + m); });
}

// -- decay-LIF ------------------------------------------------------------------------------------------------
// cur and s may be the same buffer (the layer's inplace option: S_t written over I_t once it is read);
// Sig: cur holds Z_t and the current is I_t = sigmoid(Z_t)
template <bool First, bool Sig>
void lif_step(const float* cur, const float* __restrict__ vp, float* __restrict__ v, float* s, int64_t m, float lam,
              float th) {
  for (int64_t i = 0; i < m; ++i) {
    const float current = Sig ? sigmoid(cur[i]) : cur[i];
    float vn = current;
    if (!First) {
      const float keep = vp[i] <= th ? 1.0f : 0.0f;  // 1 - S_{t-1}; a NaN V_{t-1} gives 0, and NaN * 0 = NaN
      vn = current + (lam * vp[i]) * keep;
    }
    v[i] = vn;
    s[i] = vn > th ? 1.0f : 0.0f;
  }
}

template <bool Sig>
void lif_forward_loops(const float* I, float* V, float* S, int64_t T, int64_t n, float lam, float th) {
  over(n, [&](int64_t b, int64_t e) {
    for (int64_t t = 0; t < T; ++t) {
      const int64_t o = t * n + b;
      if (t == 0) lif_step<true, Sig>(I + o, nullptr, V + o, S + o, e - b, lam, th);
      else lif_step<false, Sig>(I + o, V + o - n, V + o, S + o, e - b, lam, th);
    }
  });
}

void lif_forward(const at::Tensor& current, bool sigmoid_input, const at::Tensor& v, const at::Tensor& s, double decay,
                 double v_th) {
  check(current, "current");
  check(v, "v");
  check(s, "s");
  const int64_t T = current.size(0), n = current.numel() / T;
  const float lam = static_cast<float>(decay), th = static_cast<float>(v_th);
  const float* I = current.data_ptr<float>();
  float* V = v.data_ptr<float>();
  float* S = s.data_ptr<float>();
  if (sigmoid_input) lif_forward_loops<true>(I, V, S, T, n, lam, th);
  else lif_forward_loops<false>(I, V, S, T, n, lam, th);
}

// one step back: g holds V_t on entry; gnb holds dL/dV_{t+1} (Last: unread) and gets dL/dV_t; g gets dL/dV_t,
// or dL/dZ_t = dL/dV_t I_t (1 - I_t) when the input current is I = sigmoid(Z) (Sig): I_t solved from
// V_t = I_t + (lambda V_{t-1}) [V_{t-1} <= V_th] (vp: V_{t-1}, still intact; First: V_0 = I_0), equal to the
// forward's I_t to within that sum's one rounding, which the derivative I (1 - I) does not notice.  S_t is not
// read: it is [V_t > V_th], one comparison instead of a pass over a saved window.
template <int Kind, bool Last, bool DetachReset, bool Sig, bool First>
void lif_back_step(float* __restrict__ g, float* __restrict__ gnb, const float* __restrict__ gs,
                   const float* __restrict__ vp, int64_t m, float lam, float th, float p0, float p1) {
  for (int64_t i = 0; i < m; ++i) {
    const float v = g[i];
    const float sg = surrogate_grad<Kind>(v - th, p0, p1);
    float gv;
    if (Last) {
      gv = gs[i] * sg;
    } else {
      // S_t also enters V_{t+1} through the reset flag (dV_{t+1}/dS_t = -lambda V_t) unless that is detached;
      // the membrane: dV_{t+1}/dV_t = lambda (1 - S_t)
      const float gn = gnb[i];
      const float own = DetachReset ? gs[i] * sg : (gs[i] - (lam * v) * gn) * sg;
      const float keep = v > th ? 0.0f : 1.0f;
      gv = own + (lam * gn) * keep;
    }
    gnb[i] = gv;
    if constexpr (Sig) {
      float current = v;  // I_t
      if (!First) current = v - (lam * vp[i]) * (vp[i] <= th ? 1.0f : 0.0f);
      g[i] = gv * (current * (1.0f - current));
    } else {
      g[i] = gv;
    }
  }
}

template <int Kind, bool Sig>
void lif_backward_kind(const at::Tensor& v, const at::Tensor& grad_s, double decay, double v_th, bool detach_reset,
                       float p0, float p1) {
  const int64_t T = v.size(0), n = v.numel() / T;
  const float lam = static_cast<float>(decay), th = static_cast<float>(v_th);
  float* V = v.data_ptr<float>();
  const float* GS = grad_s.data_ptr<float>();
  over(n, [&](int64_t b, int64_t e) {
    float gnb[kBlock];  // dL/dV_{t+1} of the block
    for (int64_t t = T - 1; t >= 0; --t) {
      const int64_t o = t * n + b, m = e - b;
      const float* vp = t > 0 ? V + o - n : nullptr;  // V_{t-1}: overwritten only at step t - 1, after this one
#define SPIKEDYN_LIF_BACK(FIRST)                                                                             \
  if (t == T - 1) lif_back_step<Kind, true, false, Sig, FIRST>(V + o, gnb, GS + o, vp, m, lam, th, p0, p1);  \
  else if (detach_reset) lif_back_step<Kind, false, true, Sig, FIRST>(V + o, gnb, GS + o, vp, m, lam, th, p0, p1); \
  else lif_back_step<Kind, false, false, Sig, FIRST>(V + o, gnb, GS + o, vp, m, lam, th, p0, p1)
      if (t == 0) {
        SPIKEDYN_LIF_BACK(true);
      } else {
        SPIKEDYN_LIF_BACK(false);
      }
#undef SPIKEDYN_LIF_BACK
    }
  });
}

// v [T, ...]: the saved V on entry, on return dL/dI (written over V), or dL/dZ when the forward computed the
// current as I = sigmoid(Z) itself (sigmoid_input: the input function's derivative fused in, I solved from V)
void lif_backward(const at::Tensor& v, const at::Tensor& grad_s, bool sigmoid_input, double decay, double v_th,
                  bool detach_reset, int64_t kind, double p0, double p1) {
  check(v, "v");
  check(grad_s, "grad_s");
  const float a = static_cast<float>(p0), b = static_cast<float>(p1);
  spikedyn_cpu::with_surrogate(kind, "lif_backward", [&](auto k) {
    constexpr int K = decltype(k)::value;
    if (sigmoid_input) lif_backward_kind<K, true>(v, grad_s, decay, v_th, detach_reset, a, b);
    else lif_backward_kind<K, false>(v, grad_s, decay, v_th, detach_reset, a, b);
  });
}

// -- PLIF / LIF-tau -------------------------------------------------------------------------------------------
// one step over elements [0, m): V_{t-1} from vp (nullptr at t = 0: V_reset); with_reset: V_reset != 0
// V_t = H_t + (-H_t) S_t (+ V_reset S_t): H (1 - S) by multiplication, so NaN and inf behave as in the reference;
// shared by the forward and the backward's rebuild of H, which must round alike
template <bool WithReset>
inline float plif_reset(float charge, float spike, float vr) {
  float after = charge + (-charge) * spike;
  if (WithReset) after = after + vr * spike;
  return after;
}

// x and s may be the same buffer (the layer's inplace option: S_t written over X_t once it is read)
template <bool First, bool WithReset, bool WriteH = true>
void plif_step(const float* x, const float* __restrict__ vp, float* __restrict__ d, float* __restrict__ h,
               float* s, float* __restrict__ v, int64_t m, float k, float th, float vr) {
  for (int64_t i = 0; i < m; ++i) {
    const float prev = First ? vr : vp[i];
    float drive = (First && !WithReset) ? x[i] : x[i] - prev;
    if (WithReset) drive = drive + vr;
    const float charge = prev + drive * k;
    const float spike = charge >= th ? 1.0f : 0.0f;
    const float after = plif_reset<WithReset>(charge, spike, vr);
    d[i] = drive;
    if (WriteH) h[i] = charge;
    s[i] = spike;
    v[i] = after;
  }
}

// d [T, ...] (or [1, ...] when k is fixed: one slot reused), h and s [T, ...], v [2, ...] (V_t in slot t % 2);
// h empty: H is not written (backward rebuilds it from D, plif_backward_drive)
void plif_forward(const at::Tensor& x, const at::Tensor& k, const at::Tensor& d, const at::Tensor& h,
                  const at::Tensor& s, const at::Tensor& v, double v_th, double v_reset) {
  check(x, "x");
  check(d, "d");
  check(s, "s");
  check(v, "v");
  const bool write_h = h.numel() > 0;
  if (write_h) check(h, "h");
  const int64_t T = x.size(0), n = x.numel() / T;
  const bool all_d = d.size(0) == T;
  TORCH_CHECK(write_h || all_d, "plif_forward: without H, D must hold every step");
  const float kf = k.item<float>(), th = static_cast<float>(v_th), vr = static_cast<float>(v_reset);
  const bool with_reset = v_reset != 0.0;
  float* X = x.data_ptr<float>();
  float* D = d.data_ptr<float>();
  float* H = write_h ? h.data_ptr<float>() : nullptr;
  float* S = s.data_ptr<float>();
  float* V = v.data_ptr<float>();
  over(n, [&](int64_t b, int64_t e) {
    for (int64_t t = 0; t < T; ++t) {
      const int64_t dt = (all_d ? t : 0) * n, vt = (t % 2) * n, vp = ((t + 1) % 2) * n;
      const int64_t m = e - b, o = t * n + b;
      float* ht = write_h ? H + o : nullptr;
      const float* prev = t == 0 ? nullptr : V + vp + b;
#define SPIKEDYN_PLIF_FWD(FIRST, RESET, WRITE) \
  plif_step<FIRST, RESET, WRITE>(X + o, prev, D + dt + b, ht, S + o, V + vt + b, m, kf, th, vr)
#define SPIKEDYN_PLIF_FWD_RESET(FIRST, WRITE) \
  if (with_reset) SPIKEDYN_PLIF_FWD(FIRST, true, WRITE); else SPIKEDYN_PLIF_FWD(FIRST, false, WRITE)
      if (t == 0) {
        if (write_h) { SPIKEDYN_PLIF_FWD_RESET(true, true); } else { SPIKEDYN_PLIF_FWD_RESET(true, false); }
      } else {
        if (write_h) { SPIKEDYN_PLIF_FWD_RESET(false, true); } else { SPIKEDYN_PLIF_FWD_RESET(false, false); }
      }
#undef SPIKEDYN_PLIF_FWD_RESET
#undef SPIKEDYN_PLIF_FWD
    }
  });
}

// one step back: g holds H_t on entry (Own) or k dS_t/dH_t dL/dS_t; on return G_t = k dL/dH_t, with
// G_t = own + dH_{t+1}/dH_t G_{t+1}: (1 - k)(1 - S_t), or the given carry (reset differentiated); acc += D_t G_t
template <int Kind, bool Own, bool Last, bool Carry, bool Acc>
void plif_back_step(float* __restrict__ g, const float* __restrict__ gs, const float* __restrict__ gn,
                    const float* __restrict__ st, const float* __restrict__ ct, const float* __restrict__ dt,
                    float* __restrict__ acc, int64_t m, float c, float scale, float th, float p0, float p1) {
  for (int64_t i = 0; i < m; ++i) {
    // with H_t at hand (Own), 1 - S_t is [H_t < V_th] and the saved S is not read
    const float keep = Own ? (g[i] >= th ? 0.0f : 1.0f) : 1.0f - st[i];
    float total = Own ? (scale * surrogate_grad<Kind>(g[i] - th, p0, p1)) * gs[i] : g[i];
    if (!Last) total = total + (Carry ? ct[i] * gn[i] : (c * gn[i]) * keep);
    g[i] = total;
    if (Acc) acc[i] = Last ? dt[i] * total : acc[i] + dt[i] * total;
  }
}

template <int Kind, bool Own>
void plif_backward_kind(float* G, const float* GS, const float* S, const float* D, const float* C, float* A,
                        int64_t T, int64_t n, float c, float scale, float th, float p0, float p1) {
  over(n, [&](int64_t b, int64_t e) {
    for (int64_t t = T - 1; t >= 0; --t) {
      const int64_t m = e - b, o = t * n + b;
      float* g = G + o;
      const float* gs = GS != nullptr ? GS + o : nullptr;
      const float* gn = t + 1 < T ? G + o + n : nullptr;
      const float* st = S != nullptr ? S + o : nullptr;  // not read with H at hand (Own)
      const float* ct = C != nullptr && t + 1 < T ? C + o : nullptr;
      const float* dt = D != nullptr ? D + o : nullptr;
      float* a = A != nullptr ? A + b : nullptr;
#define SPIKEDYN_PLIF_STEP(LAST, CARRY, ACC) \
  plif_back_step<Kind, Own, LAST, CARRY, ACC>(g, gs, gn, st, ct, dt, a, m, c, scale, th, p0, p1)
      if (t == T - 1) {
        if (a != nullptr) SPIKEDYN_PLIF_STEP(true, false, true); else SPIKEDYN_PLIF_STEP(true, false, false);
      } else if (ct != nullptr) {
        if (a != nullptr) SPIKEDYN_PLIF_STEP(false, true, true); else SPIKEDYN_PLIF_STEP(false, true, false);
      } else {
        if (a != nullptr) SPIKEDYN_PLIF_STEP(false, false, true); else SPIKEDYN_PLIF_STEP(false, false, false);
      }
#undef SPIKEDYN_PLIF_STEP
    }
  });
}

// g [T, ...]: H_t on entry when grad_s is given (the own term k dS_t/dH_t dL/dS_t is computed here, with the
// surrogate `kind`, p0, p1), else that own term already; G_t = k dL/dH_t on return (times `scale` / k when
// k = 0).  acc [...] = sum_t D_t G_t when d is given.  carry [T-1, ...] (reset differentiated) or none.  s: the
// spikes, needed only without grad_s (with H at hand, 1 - S_t is [H_t < V_th]).
void plif_backward(const at::Tensor& g, const std::optional<at::Tensor>& grad_s, const std::optional<at::Tensor>& s,
                   const std::optional<at::Tensor>& d, const std::optional<at::Tensor>& carry, const at::Tensor& acc,
                   double one_minus_k, double scale, double v_th, int64_t kind, double p0, double p1) {
  check(g, "g");
  const int64_t T = g.size(0), n = g.numel() / T;
  const bool own = grad_s.has_value() && grad_s->defined();
  const bool has_s = s.has_value() && s->defined();
  const bool has_d = d.has_value() && d->defined(), has_carry = carry.has_value() && carry->defined();
  TORCH_CHECK(own || has_s, "plif_backward: without grad_s the spikes s are needed");
  if (own) check(*grad_s, "grad_s");
  if (has_s) check(*s, "s");
  float* G = g.data_ptr<float>();
  const float* GS = own ? grad_s->data_ptr<float>() : nullptr;
  const float* S = has_s ? s->data_ptr<float>() : nullptr;
  const float* D = has_d ? d->data_ptr<float>() : nullptr;
  const float* C = has_carry ? carry->data_ptr<float>() : nullptr;
  float* A = has_d ? acc.data_ptr<float>() : nullptr;
  const float c = static_cast<float>(one_minus_k), sc = static_cast<float>(scale), th = static_cast<float>(v_th);
  const float a = static_cast<float>(p0), b = static_cast<float>(p1);
  if (!own) return plif_backward_kind<0, false>(G, GS, S, D, C, A, T, n, c, sc, th, a, b);
  spikedyn_cpu::with_surrogate(kind, "plif_backward", [&](auto k) {
    plif_backward_kind<decltype(k)::value, true>(G, GS, S, D, C, A, T, n, c, sc, th, a, b);
  });
}

// Backward from the saved drive alone (PLIF's learnable k, detached reset): per block, H_t is rebuilt for every
// step from D as the forward computed it (H_t = V_{t-1} + D_t k, V_t = H_t + (-H_t) S_t (+ V_reset S_t): the same
// bits), then the steps run back as plif_back_step<Own, !Carry, Acc> does, G_t written over D_t once it is read.
// d [T, ...]: D on entry, G_t = k dL/dH_t on return (times `scale` / k when k = 0); acc [...] = sum_t D_t G_t.
// one step of the rebuild: H_t = V_{t-1} + D_t k with V_{t-1} from H_{t-1} (First: V_reset), as plif_step
template <bool First, bool WithReset>
void plif_rebuild_step(const float* __restrict__ hp, const float* __restrict__ dt, float* __restrict__ ht, int64_t m,
                       float k, float th, float vr) {
  for (int64_t i = 0; i < m; ++i) {
    float prev = vr;
    if (!First) prev = plif_reset<WithReset>(hp[i], hp[i] >= th ? 1.0f : 0.0f, vr);
    ht[i] = prev + dt[i] * k;
  }
}

// one step back from the drive: g holds D_t on entry and G_t on return; the same terms as plif_back_step<Own,
// !Carry, Acc> with H_t read from ht
template <int Kind, bool Last>
void plif_back_step_drive(float* __restrict__ g, const float* __restrict__ gs, const float* __restrict__ gn,
                          const float* __restrict__ ht, float* __restrict__ acc, int64_t m, float c, float scale,
                          float th, float p0, float p1) {
  for (int64_t i = 0; i < m; ++i) {
    const float keep = ht[i] >= th ? 0.0f : 1.0f;
    float total = (scale * surrogate_grad<Kind>(ht[i] - th, p0, p1)) * gs[i];
    if (!Last) total = total + (c * gn[i]) * keep;
    const float drive = g[i];
    acc[i] = Last ? drive * total : acc[i] + drive * total;
    g[i] = total;
  }
}

template <int Kind, bool WithReset>
void plif_backward_drive_kind(float* D, const float* GS, float* A, int64_t T, int64_t n, float k, float c,
                              float scale, float th, float vr, float p0, float p1) {
  over(n, [&](int64_t b, int64_t e) {
    const int64_t m = e - b;
    thread_local std::vector<float> charge;  // this block's H_t for every t (grown per thread, never cleared)
    if (charge.size() < static_cast<size_t>(T * m)) charge.resize(static_cast<size_t>(T * m));
    float* hb = charge.data();
    for (int64_t t = 0; t < T; ++t) {
      if (t == 0) plif_rebuild_step<true, WithReset>(nullptr, D + b, hb, m, k, th, vr);
      else plif_rebuild_step<false, WithReset>(hb + (t - 1) * m, D + t * n + b, hb + t * m, m, k, th, vr);
    }
    for (int64_t t = T - 1; t >= 0; --t) {
      float* g = D + t * n + b;
      if (t == T - 1) plif_back_step_drive<Kind, true>(g, GS + t * n + b, nullptr, hb + t * m, A + b, m, c, scale, th, p0, p1);
      else plif_back_step_drive<Kind, false>(g, GS + t * n + b, g + n, hb + t * m, A + b, m, c, scale, th, p0, p1);
    }
  });
}

void plif_backward_drive(const at::Tensor& d, const at::Tensor& grad_s, const at::Tensor& acc, double k,
                         double one_minus_k, double scale, double v_th, double v_reset, int64_t kind, double p0,
                         double p1) {
  check(d, "d");
  check(grad_s, "grad_s");
  check(acc, "acc");
  const int64_t T = d.size(0), n = d.numel() / T;
  TORCH_CHECK(grad_s.numel() == d.numel() && acc.numel() == n, "plif_backward_drive: shapes do not match");
  float* D = d.data_ptr<float>();
  const float* GS = grad_s.data_ptr<float>();
  float* A = acc.data_ptr<float>();
  const float kf = static_cast<float>(k), c = static_cast<float>(one_minus_k), sc = static_cast<float>(scale);
  const float th = static_cast<float>(v_th), vr = static_cast<float>(v_reset);
  const float a = static_cast<float>(p0), b = static_cast<float>(p1);
  spikedyn_cpu::with_surrogate(kind, "plif_backward_drive", [&](auto kk) {
    constexpr int K = decltype(kk)::value;
    if (v_reset != 0.0) plif_backward_drive_kind<K, true>(D, GS, A, T, n, kf, c, sc, th, vr, a, b);
    else plif_backward_drive_kind<K, false>(D, GS, A, T, n, kf, c, sc, th, vr, a, b);
  });
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(spikedyn_cpu, m) {
  m.def("lif_forward(Tensor(a!) current, bool sigmoid_input, Tensor(b!) v, Tensor(a!) s, float decay, float v_th) -> ()");
  m.def(
      "lif_backward(Tensor(a!) v, Tensor grad_s, bool sigmoid_input, float decay, float v_th, bool detach_reset, "
      "int kind, float p0, float p1) -> ()");
  m.def(
      "plif_forward(Tensor x, Tensor k, Tensor(a!) d, Tensor(b!) h, Tensor(c!) s, Tensor(d!) v, float v_th, "
      "float v_reset) -> ()");
  m.def(
      "plif_backward(Tensor(a!) g, Tensor? grad_s, Tensor? s, Tensor? d, Tensor? carry, Tensor(b!) acc, "
      "float one_minus_k, float scale, float v_th, int kind, float p0, float p1) -> ()");
  m.def(
      "plif_backward_drive(Tensor(a!) d, Tensor grad_s, Tensor(b!) acc, float k, float one_minus_k, float scale, "
      "float v_th, float v_reset, int kind, float p0, float p1) -> ()");
}

TORCH_LIBRARY_IMPL(spikedyn_cpu, CPU, m) {
  m.impl("lif_forward", &lif_forward);
  m.impl("lif_backward", &lif_backward);
  m.impl("plif_forward", &plif_forward);
  m.impl("plif_backward", &plif_backward);
  m.impl("plif_backward_drive", &plif_backward_drive);
}
