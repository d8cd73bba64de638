// Max and average pooling over non-overlapping k x k windows (kernel = stride = k, no padding) for float32
// CPU maps, compiled once on first use by spikedyn.kernels.cpu; the spiking conv blocks' pooling of spikes
// (spikedyn.layers.pool: window_max_pool2d, window_avg_pool2d).  PyTorch's max_pool2d_with_indices keeps an
// int64 index per window and its CPU forward does not vectorise; here each window stores the position of its
// maximum in one byte, the 2 x 2 case runs vectorised, and the backward writes every input gradient element once
// (no zero fill first).
//
// Forward, for every plane p and window (i, j):  out[p, i, j] = max_{a, b < k} x[p, k i + a, k j + b],
// index[p, i, j] = a k + b of that maximum, scanning a then b and taking a value when it is greater than the
// maximum so far or NaN, which is PyTorch's rule (the first of equal maxima wins; the last NaN wins).
// Backward:  dL/dx[p, k i + a, k j + b] = dL/dout[p, i, j] if a k + b = index[p, i, j], else 0; rows and
// columns past the last whole window get 0 (0 + g rather than g, so a -0.0 gradient lands as +0.0 as in
// PyTorch's zero-filled buffer).
//
// Average:  out[p, i, j] = (0 + sum_{a, b < k} x[p, k i + a, k j + b]) / k^2, summed in row-major order in float
// as PyTorch's CPU kernel sums (so the values are equal bit for bit); backward: every element of window (i, j)
// gets 0 + dL/dout[p, i, j] / k^2, the rows and columns past the last window 0.  PyTorch's CPU average pool does
// not vectorise these loops either (54 and 61 ms forward and backward on BRP's MNIST conv maps, [1000, 32, 28, 28]).
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstdint>
#include <cstring>

#include "cpu_common.h"

namespace {

using spikedyn_cpu::check;

// the planes of a [..., H, W] map and the pooled sizes
struct Geometry {
  int64_t planes, H, W, Ho, Wo;
};

// the geometry of map x pooled over windows of k into pooled, with the shapes checked (op names the operator)
Geometry geometry(const char* op, const at::Tensor& x, int64_t k, const at::Tensor& pooled) {
  TORCH_CHECK(x.dim() >= 2, op, ": the map must be [..., H, W]");
  TORCH_CHECK(k >= 1, op, ": the window size k must be at least 1");
  const int64_t H = x.size(-2), W = x.size(-1);
  const int64_t Ho = H / k, Wo = W / k;
  TORCH_CHECK(Ho >= 1 && Wo >= 1, op, ": the window is larger than the map");
  const int64_t planes = x.numel() / (H * W);
  TORCH_CHECK(pooled.numel() == planes * Ho * Wo, op, ": the pooled map must be [..., H / k, W / k]");
  return {planes, H, W, Ho, Wo};
}

// the max pool's index: one byte per window, so windows of at most 15 x 15
void check_index(const at::Tensor& index, const Geometry& g, int64_t k) {
  TORCH_CHECK(index.device().is_cpu() && index.is_contiguous() && index.scalar_type() == at::kByte,
              "window_max_pool2d: index must be a contiguous uint8 CPU tensor");
  TORCH_CHECK(k * k <= 255, "window_max_pool2d: the window size k must be in 1..15");
  TORCH_CHECK(index.numel() == g.planes * g.Ho * g.Wo, "window_max_pool2d: the index must be [..., H / k, W / k]");
}

// body(p) for every plane p, the planes split between threads
template <typename Body>
void for_each_plane(const Geometry& g, Body body) {
  at::parallel_for(0, g.planes, std::max<int64_t>(1, spikedyn_cpu::kGrain / (g.H * g.W)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t p = begin; p < end; ++p) body(p);
                   });
}

// a plane's input gradient past its last whole window (the columns and rows no window reads) set to 0
void zero_past_windows(const Geometry& g, int64_t k, float* plane) {
  for (int64_t r = 0; r < k * g.Ho; ++r) {
    for (int64_t c = k * g.Wo; c < g.W; ++c) plane[r * g.W + c] = 0.0f;
  }
  for (int64_t r = k * g.Ho; r < g.H; ++r) std::memset(plane + r * g.W, 0, sizeof(float) * g.W);
}

// the first maximum of a pair, or its last NaN: the scan's rule for two values, which composes over a window
// in row-major order (the rule picks the last NaN if there is one, else the first of the equal maxima)
inline bool second_wins(float first, float second) { return (second > first) | (second != second); }

// 2 x 2 windows, one output row from two input rows, written as a pairwise tree and with the window position as a
// float (0..3) so that GCC vectorises it (with a byte index in the same loop it does not); kChunk windows at a time
constexpr int64_t kChunk = 256;

inline void pool_row_2(const float* __restrict__ top, const float* __restrict__ bottom, float* __restrict__ out,
                       float* __restrict__ at, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const float a = top[2 * j], b = top[2 * j + 1], c = bottom[2 * j], d = bottom[2 * j + 1];
    const bool upper_right = second_wins(a, b), lower_right = second_wins(c, d);
    const float upper = upper_right ? b : a, lower = lower_right ? d : c;
    const bool low = second_wins(upper, lower);
    out[j] = low ? lower : upper;
    at[j] = low ? (lower_right ? 3.0f : 2.0f) : (upper_right ? 1.0f : 0.0f);
  }
}

inline void unpool_row_2(const float* __restrict__ grad_out, const float* __restrict__ at, float* __restrict__ top,
                         float* __restrict__ bottom, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const float v = 0.0f + grad_out[j];
    top[2 * j] = at[j] == 0.0f ? v : 0.0f;
    top[2 * j + 1] = at[j] == 1.0f ? v : 0.0f;
    bottom[2 * j] = at[j] == 2.0f ? v : 0.0f;
    bottom[2 * j + 1] = at[j] == 3.0f ? v : 0.0f;
  }
}

void window_max_pool2d(const at::Tensor& x, int64_t k, const at::Tensor& out, const at::Tensor& index) {
  check(x, "x");
  check(out, "out");
  const Geometry g = geometry("window_max_pool2d", x, k, out);
  check_index(index, g, k);
  const float* X = x.data_ptr<float>();
  float* O = out.data_ptr<float>();
  uint8_t* I = index.data_ptr<uint8_t>();
  for_each_plane(g, [&](int64_t p) {
    for (int64_t i = 0; i < g.Ho; ++i) {
      const float* top = X + (p * g.H + k * i) * g.W;
      float* o = O + (p * g.Ho + i) * g.Wo;
      uint8_t* id = I + (p * g.Ho + i) * g.Wo;
      if (k == 2) {
        float at[kChunk];
        for (int64_t j0 = 0; j0 < g.Wo; j0 += kChunk) {
          const int64_t n = std::min(kChunk, g.Wo - j0);
          pool_row_2(top + 2 * j0, top + g.W + 2 * j0, o + j0, at, n);
          for (int64_t j = 0; j < n; ++j) id[j0 + j] = static_cast<uint8_t>(static_cast<int32_t>(at[j]));
        }
        continue;
      }
      for (int64_t j = 0; j < g.Wo; ++j) {
        float m = top[k * j];
        uint8_t at = 0;
        for (int64_t a = 0; a < k; ++a) {
          const float* line = top + a * g.W + k * j;
          for (int64_t b = 0; b < k; ++b) {
            if (second_wins(m, line[b])) {
              m = line[b];
              at = static_cast<uint8_t>(a * k + b);
            }
          }
        }
        o[j] = m;
        id[j] = at;
      }
    }
  });
}

void window_max_pool2d_backward(const at::Tensor& grad_out, const at::Tensor& index, int64_t k,
                                const at::Tensor& grad_x) {
  check(grad_out, "grad_out");
  check(grad_x, "grad_x");
  const Geometry g = geometry("window_max_pool2d_backward", grad_x, k, grad_out);
  check_index(index, g, k);
  const float* GO = grad_out.data_ptr<float>();
  const uint8_t* I = index.data_ptr<uint8_t>();
  float* GX = grad_x.data_ptr<float>();
  for_each_plane(g, [&](int64_t p) {
    for (int64_t i = 0; i < g.Ho; ++i) {
      const float* go = GO + (p * g.Ho + i) * g.Wo;
      const uint8_t* id = I + (p * g.Ho + i) * g.Wo;
      float* top = GX + (p * g.H + k * i) * g.W;
      if (k == 2) {
        float at[kChunk];
        for (int64_t j0 = 0; j0 < g.Wo; j0 += kChunk) {
          const int64_t n = std::min(kChunk, g.Wo - j0);
          for (int64_t j = 0; j < n; ++j) at[j] = static_cast<float>(id[j0 + j]);
          unpool_row_2(go + j0, at, top + 2 * j0, top + g.W + 2 * j0, n);
        }
        continue;
      }
      for (int64_t a = 0; a < k; ++a) {
        float* dx = top + a * g.W;
        for (int64_t j = 0; j < g.Wo; ++j) {
          const float v = 0.0f + go[j];
          for (int64_t b = 0; b < k; ++b) dx[k * j + b] = id[j] == a * k + b ? v : 0.0f;
        }
      }
    }
    zero_past_windows(g, k, GX + p * g.H * g.W);
  });
}

// 2 x 2 windows: one output row from two input rows (all-float loops, which GCC vectorises)
inline void avg_row_2(const float* __restrict__ top, const float* __restrict__ bottom, float* __restrict__ out,
                      int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    out[j] = ((((0.0f + top[2 * j]) + top[2 * j + 1]) + bottom[2 * j]) + bottom[2 * j + 1]) / 4.0f;
  }
}

inline void unavg_row_2(const float* __restrict__ grad_out, float* __restrict__ top, float* __restrict__ bottom,
                        int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const float v = 0.0f + grad_out[j] / 4.0f;
    top[2 * j] = v;
    top[2 * j + 1] = v;
    bottom[2 * j] = v;
    bottom[2 * j + 1] = v;
  }
}

void window_avg_pool2d(const at::Tensor& x, int64_t k, const at::Tensor& out) {
  check(x, "x");
  check(out, "out");
  const Geometry g = geometry("window_avg_pool2d", x, k, out);
  const float* X = x.data_ptr<float>();
  float* O = out.data_ptr<float>();
  const float count = static_cast<float>(k * k);
  for_each_plane(g, [&](int64_t p) {
    for (int64_t i = 0; i < g.Ho; ++i) {
      const float* top = X + (p * g.H + k * i) * g.W;
      float* o = O + (p * g.Ho + i) * g.Wo;
      if (k == 2) {
        avg_row_2(top, top + g.W, o, g.Wo);
        continue;
      }
      for (int64_t j = 0; j < g.Wo; ++j) {
        float sum = 0.0f;
        for (int64_t a = 0; a < k; ++a) {
          for (int64_t b = 0; b < k; ++b) sum += top[a * g.W + k * j + b];
        }
        o[j] = sum / count;
      }
    }
  });
}

void window_avg_pool2d_backward(const at::Tensor& grad_out, int64_t k, const at::Tensor& grad_x) {
  check(grad_out, "grad_out");
  check(grad_x, "grad_x");
  const Geometry g = geometry("window_avg_pool2d_backward", grad_x, k, grad_out);
  const float* GO = grad_out.data_ptr<float>();
  float* GX = grad_x.data_ptr<float>();
  const float count = static_cast<float>(k * k);
  for_each_plane(g, [&](int64_t p) {
    for (int64_t i = 0; i < g.Ho; ++i) {
      const float* go = GO + (p * g.Ho + i) * g.Wo;
      float* top = GX + (p * g.H + k * i) * g.W;
      if (k == 2) {
        unavg_row_2(go, top, top + g.W, g.Wo);
        continue;
      }
      for (int64_t a = 0; a < k; ++a) {
        float* dx = top + a * g.W;
        for (int64_t j = 0; j < g.Wo; ++j) {
          const float v = 0.0f + go[j] / count;
          for (int64_t b = 0; b < k; ++b) dx[k * j + b] = v;
        }
      }
    }
    zero_past_windows(g, k, GX + p * g.H * g.W);
  });
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(spikedyn_cpu, m) {
  m.def("window_max_pool2d(Tensor x, int k, Tensor(a!) out, Tensor(b!) index) -> ()");
  m.def("window_max_pool2d_backward(Tensor grad_out, Tensor index, int k, Tensor(a!) grad_x) -> ()");
  m.def("window_avg_pool2d(Tensor x, int k, Tensor(a!) out) -> ()");
  m.def("window_avg_pool2d_backward(Tensor grad_out, int k, Tensor(a!) grad_x) -> ()");
}

TORCH_LIBRARY_IMPL(spikedyn_cpu, CPU, m) {
  m.impl("window_max_pool2d", &window_max_pool2d);
  m.impl("window_max_pool2d_backward", &window_max_pool2d_backward);
  m.impl("window_avg_pool2d", &window_avg_pool2d);
  m.impl("window_avg_pool2d_backward", &window_avg_pool2d_backward);
}
