// The backward pass of the per-step training-mode batch norm (spikedyn.layers.norm.StepBatchNorm) for CPU
// tensors, compiled once on first use by spikedyn.kernels.cpu.  PyTorch has no CPU kernel that writes a batch
// norm's input gradient into a given buffer (the out= form of native_batch_norm_backward computes into a fresh
// tensor and copies it), so T calls of it cost a window-sized copy; this writes each step's gradient in place.
//
// For x [T, B, C, L] normalised per step t and channel c over the N = B L values x_tbcl, with the forward's
// mean mu_tc and 1 / sqrt(var_tc + eps) = r_tc (its save_mean / save_invstd), and dy = dL/dy:
//   grad_b_tc = sum dy,   grad_w_tc = r_tc sum dy (x - mu_tc),
//   dL/dx = (dy - sum dy / N - (x - mu_tc) r_tc^2 sum dy (x - mu_tc) / N) r_tc w_c
// (PyTorch's own formula, batch_norm_backward_cpu_template); each row's sums over 16 float lanes, then float64;
// fused multiply-adds where they save a rounding (std::fma: the gradient need not match a reference bit for bit).
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>

#include "cpu_common.h"

namespace {

using spikedyn_cpu::check;

constexpr int kLanes = 16;  // independent partial sums: the reduction vectorizes without reassociating a float sum

// sum dy and sum dy (x - mu) over one contiguous row of L values, in float over kLanes lanes
inline void row_sums(const float* __restrict__ dy, const float* __restrict__ x, int64_t L, float mu, double& sum_dy,
                     double& sum_dy_xmu) {
  float lane_dy[kLanes] = {}, lane_xmu[kLanes] = {};
  int64_t l = 0;
  for (; l + kLanes <= L; l += kLanes) {
    for (int k = 0; k < kLanes; ++k) {
      lane_dy[k] += dy[l + k];
      lane_xmu[k] = std::fma(dy[l + k], x[l + k] - mu, lane_xmu[k]);
    }
  }
  float tail_dy = 0.0f, tail_xmu = 0.0f;
  for (; l < L; ++l) {
    tail_dy += dy[l];
    tail_xmu += dy[l] * (x[l] - mu);
  }
  double row_dy = tail_dy, row_xmu = tail_xmu;
  for (int k = 0; k < kLanes; ++k) {
    row_dy += lane_dy[k];
    row_xmu += lane_xmu[k];
  }
  sum_dy += row_dy;
  sum_dy_xmu += row_xmu;
}

inline void row_grad(const float* __restrict__ dy, const float* __restrict__ x, float* __restrict__ dx, int64_t L,
                     float mu, float grad_mean, float k, float scale) {
  for (int64_t l = 0; l < L; ++l) dx[l] = std::fma(mu - x[l], k, dy[l] - grad_mean) * scale;
}

void step_batch_norm_backward(const at::Tensor& grad_y, const at::Tensor& x, const std::optional<at::Tensor>& weight,
                              const at::Tensor& mean, const at::Tensor& invstd, const at::Tensor& grad_x,
                              const at::Tensor& grad_w, const at::Tensor& grad_b) {
  check(grad_y, "grad_y");
  check(x, "x");
  check(mean, "save_mean");
  check(invstd, "save_invstd");
  check(grad_x, "grad_x");
  check(grad_w, "grad_w");
  check(grad_b, "grad_b");
  TORCH_CHECK(x.dim() >= 3, "step_batch_norm_backward: x must be [T, B, C, ...]");
  const int64_t T = x.size(0), B = x.size(1), C = x.size(2), L = x.numel() / (T * B * C);
  TORCH_CHECK(grad_y.sizes() == x.sizes() && grad_x.sizes() == x.sizes(),
              "step_batch_norm_backward: grad_y and grad_x must have x's shape");
  TORCH_CHECK(mean.numel() == T * C && invstd.numel() == T * C && grad_w.numel() == T * C && grad_b.numel() == T * C,
              "step_batch_norm_backward: the statistics and the parameter gradients must be [T, C]");
  const bool has_w = weight.has_value() && weight->defined();
  if (has_w) {
    check(*weight, "weight");
    TORCH_CHECK(weight->numel() == C, "step_batch_norm_backward: weight must have C values");
  }
  const float* DY = grad_y.data_ptr<float>();
  const float* X = x.data_ptr<float>();
  const float* W = has_w ? weight->data_ptr<float>() : nullptr;
  const float* MU = mean.data_ptr<float>();
  const float* R = invstd.data_ptr<float>();
  float* DX = grad_x.data_ptr<float>();
  float* GW = grad_w.data_ptr<float>();
  float* GB = grad_b.data_ptr<float>();
  const double count = static_cast<double>(B * L);
  at::parallel_for(0, T * C, 1, [&](int64_t begin, int64_t end) {
    for (int64_t tc = begin; tc < end; ++tc) {
      const int64_t t = tc / C, c = tc % C;
      const float mu = MU[tc], r = R[tc];
      double sum_dy = 0.0, sum_dy_xmu = 0.0;
      for (int64_t b = 0; b < B; ++b) {  // per sample, one contiguous row of L values
        const int64_t o = ((t * B + b) * C + c) * L;
        row_sums(DY + o, X + o, L, mu, sum_dy, sum_dy_xmu);
      }
      GB[tc] = static_cast<float>(sum_dy);
      GW[tc] = static_cast<float>(sum_dy_xmu * r);
      const float k = static_cast<float>(sum_dy_xmu * r * r / count);
      const float grad_mean = static_cast<float>(sum_dy / count);
      const float scale = r * (has_w ? W[c] : 1.0f);
      for (int64_t b = 0; b < B; ++b) {
        const int64_t o = ((t * B + b) * C + c) * L;
        row_grad(DY + o, X + o, DX + o, L, mu, grad_mean, k, scale);
      }
    }
  });
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(spikedyn_cpu, m) {
  m.def(
      "step_batch_norm_backward(Tensor grad_y, Tensor x, Tensor? weight, Tensor save_mean, Tensor save_invstd, "
      "Tensor(a!) grad_x, Tensor(b!) grad_w, Tensor(c!) grad_b) -> ()");
}

TORCH_LIBRARY_IMPL(spikedyn_cpu, CPU, m) { m.impl("step_batch_norm_backward", &step_batch_norm_backward); }
