// What the compiled CPU time loops (cpu_*.cpp, built by spikedyn.kernels.cpu) share: the argument checks,
// the surrogate derivatives compiled in, and the split of a layer's neurons between threads and blocks.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace spikedyn_cpu {

constexpr int64_t kGrain = 32768;  // elements below which ATen's parallel_for stays on one thread
constexpr int64_t kBlock = 4096;   // elements a block runs through all T steps with (its state stays in cache)

inline void check(const at::Tensor& x, const char* name) {
  TORCH_CHECK(x.device().is_cpu(), "spikedyn CPU kernel: ", name, " must be a CPU tensor");
  TORCH_CHECK(x.is_contiguous(), "spikedyn CPU kernel: ", name, " must be contiguous");
  TORCH_CHECK(x.scalar_type() == at::kFloat, "spikedyn CPU kernel: ", name, " must be float32");
}

// dS/dx of the surrogates compiled in (spikedyn.kernels.surrogate_args): 0 rect  p1 [|x| < p0];
// 1 atan  p0 / (2 (1 + (p1 x)^2));  2 sigmoid  p0 s (1 - s), s = 1 / (1 + exp(-p0 x))
template <int Kind>
inline float surrogate_grad(float x, float p0, float p1) {
  if constexpr (Kind == 0) {
    return std::fabs(x) < p0 ? p1 : 0.0f;
  } else if constexpr (Kind == 1) {
    const float cx = p1 * x;
    return p0 / (2.0f * (1.0f + cx * cx));
  } else {
    const float sig = 1.0f / (1.0f + std::exp(-p0 * x));
    return p0 * sig * (1.0f - sig);
  }
}

// sigmoid(z) = 1 / (1 + exp(-z)) in plain float operations that the compiler vectorises with the loop around it
// (no call into libm): exp(x) = 2^n p(r), n = round(x / ln 2), r = x - n ln 2 (ln 2 in two parts), p Cephes' expf
// polynomial of degree 5, 2^n built in the exponent bits; x is clamped to [-87, 88] so that 2^n stays a normal
// float.  Within a few ulp of the correctly rounded sigmoid, as torch.sigmoid is (its own 1 / (1 + exp(-z)) rounds
// twice as well); NaN in, NaN out.
inline float sigmoid(float z) {
  float x = -z;
  x = x < -87.0f ? -87.0f : x;  // comparisons, not std::min / max: a NaN stays NaN
  x = x > 88.0f ? 88.0f : x;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: (y + kRound) - kRound rounds y to the nearest integer
  const float n = (x * 1.44269504088896341f + kRound) - kRound;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = (p * (r * r) + r) + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) * 8388608;  // 2^n: n + 127 in the exponent field
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return 1.0f / (1.0f + p * scale);
}

// Calls f(std::integral_constant<int, Kind>{}) for the surrogate `kind` (0 rect, 1 atan, 2 sigmoid), so that
// the loops are compiled once per surrogate; `op` names the caller in the error for an unknown kind.
template <typename F>
void with_surrogate(int64_t kind, const char* op, const F& f) {
  switch (kind) {
    case 0: return f(std::integral_constant<int, 0>{});
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    default: TORCH_CHECK(false, op, ": unknown surrogate kind ", kind);
  }
}

// A layer's n neurons split between threads, each thread's part cut into blocks of at most kBlock and where
// the index wraps modulo P (P = n: no wrap), so that every call of `body(i, j, m)` covers neurons
// [i, i + m) whose per-neuron parameters sit at [j, j + m).  The recursions are elementwise, so body runs
// the whole time loop over its block: one fork per call, not per step.
template <typename F>
void blocks(int64_t n, int64_t P, const F& body) {
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end;) {
      const int64_t j = i % P, m = std::min({end - i, P - j, kBlock});
      body(i, j, m);
      i += m;
    }
  });
}

}  // namespace spikedyn_cpu
