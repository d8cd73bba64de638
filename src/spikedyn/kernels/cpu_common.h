// What the compiled CPU time loops (cpu_*.cpp, built by spikedyn.kernels.cpu) share: the argument checks,
// the surrogate derivatives compiled in, and the split of a layer's neurons between threads and blocks.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cmath>
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
