// Bilinear footprint of one sampling point, shared by the CPU and CUDA kernels.
//
// A normalised location (x, y) in [0, 1] on a level of size height x width maps to the pixel
// coordinates x * width - 0.5, y * height - 0.5 (align_corners=False); the sample is the
// bilinear blend of the four surrounding pixels, a pixel outside the map counting as zero.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define MSDA_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define MSDA_HOST_DEVICE inline
#endif

namespace msda {

// floor in the accumulation type (no round trip through double for float on the host).
template <typename acc_t>
MSDA_HOST_DEVICE acc_t floor_of(acc_t v) {
#if defined(__CUDA_ARCH__)
  return ::floor(v);
#else
  return std::floor(v);
#endif
}

template <typename acc_t>
struct Footprint {
  int64_t row0;     // flat index (y0 * width + x0) of the top-left corner within the level
  acc_t lx, ly;     // fractional offsets inside the cell, in [0, 1)
  bool x0_in, x1_in, y0_in, y1_in;  // which corner columns/rows lie inside the map
};

// Fills the footprint of (loc_x, loc_y). Returns false when no corner is inside the map (the
// sample and all its gradients are then zero); NaN locations also return false, so the
// integer corner indices are only formed from finite coordinates in (-1, size).
template <typename acc_t>
MSDA_HOST_DEVICE bool footprint(acc_t loc_x, acc_t loc_y, int64_t height, int64_t width,
                                Footprint<acc_t>& f) {
  const acc_t x = loc_x * static_cast<acc_t>(width) - acc_t(0.5);
  const acc_t y = loc_y * static_cast<acc_t>(height) - acc_t(0.5);
  if (!(x > acc_t(-1) && x < static_cast<acc_t>(width) && y > acc_t(-1) &&
        y < static_cast<acc_t>(height))) {
    return false;
  }
  const acc_t xf = floor_of(x);
  const acc_t yf = floor_of(y);
  const int64_t x0 = static_cast<int64_t>(xf);
  const int64_t y0 = static_cast<int64_t>(yf);
  f.lx = x - xf;
  f.ly = y - yf;
  f.x0_in = x0 >= 0;
  f.x1_in = x0 + 1 < width;
  f.y0_in = y0 >= 0;
  f.y1_in = y0 + 1 < height;
  f.row0 = y0 * width + x0;
  return true;
}

}  // namespace msda
