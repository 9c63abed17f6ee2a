//===- LinalgKernels.cpp - matrix products, conv, pooling -------------------===//
//
// The interpreter's matrix products, convolutions and pooling (Eigen GEMMs on
// im2col), written against the ONNX specification. Anything a kernel does not
// handle is an error that names the operator and the case, never an approximate
// answer.
//
//===----------------------------------------------------------------------===//

#include "KernelSupport.h"

#include "refold/Dialect/ONNX/ONNXOps.h"

#include "mlir/IR/BuiltinAttributes.h"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>

using namespace mlir;
using llvm::ArrayRef;
using llvm::Error;
using llvm::StringRef;

namespace refold::interp {
namespace {

//===----------------------------------------------------------------------===//
// Matrix products
//===----------------------------------------------------------------------===//

template <typename T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T> using MapM = Eigen::Map<RowMatrix<T>>;
template <typename T> using CMapM = Eigen::Map<const RowMatrix<T>>;

/// numpy matmul: batched, broadcast, 1-D operands promoted.
template <typename T>
Error matmulTyped(KernelContext &c, const Tensor &a0, const Tensor &b0, Tensor &outTensor) {
  Shape sa(a0.shape()), sb(b0.shape());
  bool vecA = sa.size() == 1, vecB = sb.size() == 1;
  if (vecA) sa.insert(sa.begin(), 1);
  if (vecB) sb.push_back(1);
  int64_t m = sa[sa.size() - 2], k = sa.back(), k2 = sb[sb.size() - 2], n = sb.back();
  if (k != k2)
    return c.fail("inner dimensions differ: " + shapeString(a0.shape()) + " x " +
                  shapeString(b0.shape()));
  ArrayRef<int64_t> batchA(sa.data(), sa.size() - 2), batchB(sb.data(), sb.size() - 2);
  auto batch = broadcastShapes({batchA, batchB});
  if (!batch)
    return c.fail("batch dimensions do not broadcast");
  Shape outShape(*batch);
  if (!vecA) outShape.push_back(m);
  if (!vecB) outShape.push_back(n);
  Tensor out(dtypeOf<T>(), outShape);
  const T *pa = a0.data<T>(), *pb = b0.data<T>();
  T *pc = out.data<T>();
  if (batchB.empty()) {
    // B is one matrix: every row of every batch of A is one GEMM.
    int64_t rows = numElements(batchA) * m;
    MapM<T>(pc, rows, n).noalias() = CMapM<T>(pa, rows, k) * CMapM<T>(pb, k, n);
    outTensor = std::move(out);
    return ok();
  }
  std::array<Shape, 2> strides = {broadcastStrides(batchA, *batch), broadcastStrides(batchB, *batch)};
  forEachBroadcast<2>(*batch, strides, [&](int64_t i, const std::array<int64_t, 2> &o) {
    CMapM<T> A(pa + o[0] * m * k, m, k);
    CMapM<T> B(pb + o[1] * k * n, k, n);
    MapM<T> C(pc + i * m * n, m, n);
    C.noalias() = A * B;
  });
  outTensor = std::move(out);
  return ok();
}

Error kMatMul(KernelContext &c) {
  const Tensor *a = c.in(0), *b = c.in(1);
  if (!a || !b || a->dtype() != b->dtype())
    return c.fail("needs two inputs of one type");
  if (a->dtype() == DType::F32)
    return matmulTyped<float>(c, *a, *b, c.outputs[0]);
  if (a->dtype() == DType::F64)
    return matmulTyped<double>(c, *a, *b, c.outputs[0]);
  if (a->dtype() == DType::I64)
    return matmulTyped<int64_t>(c, *a, *b, c.outputs[0]);
  if (a->dtype() == DType::I32)
    return matmulTyped<int32_t>(c, *a, *b, c.outputs[0]);
  return c.fail("unsupported type " + dtypeName(a->dtype()));
}

template <typename T>
Error gemmTyped(KernelContext &c) {
  const Tensor &a = *c.in(0), &b = *c.in(1);
  const Tensor *bias = c.in(2);
  if (a.rank() != 2 || b.rank() != 2)
    return c.fail("A and B must be 2-D");
  bool ta = c.i("transA", 0), tb = c.i("transB", 0);
  T alpha = c.f("alpha", 1.0f), beta = c.f("beta", 1.0f);
  int64_t m = ta ? a.dim(1) : a.dim(0), k = ta ? a.dim(0) : a.dim(1);
  int64_t kb = tb ? b.dim(1) : b.dim(0), n = tb ? b.dim(0) : b.dim(1);
  if (k != kb)
    return c.fail("inner dimensions differ");
  Tensor out(dtypeOf<T>(), {m, n});
  MapM<T> C(out.data<T>(), m, n);
  CMapM<T> A(a.data<T>(), a.dim(0), a.dim(1));
  CMapM<T> B(b.data<T>(), b.dim(0), b.dim(1));
  if (ta && tb) C.noalias() = A.transpose() * B.transpose();
  else if (ta) C.noalias() = A.transpose() * B;
  else if (tb) C.noalias() = A * B.transpose();
  else C.noalias() = A * B;
  if (alpha != T(1))
    C *= alpha;
  if (bias) {
    auto shape = broadcastShapes({bias->shape(), ArrayRef<int64_t>{m, n}});
    if (!shape || (*shape)[0] != m || (*shape)[1] != n)
      return c.fail("C does not broadcast to " + shapeString({m, n}));
    std::array<Shape, 1> strides = {broadcastStrides(bias->shape(), {m, n})};
    const T *pc = bias->data<T>();
    T *po = out.data<T>();
    forEachBroadcast<1>(ArrayRef<int64_t>{m, n}, strides,
                        [&](int64_t i, const std::array<int64_t, 1> &o) { po[i] += beta * pc[o[0]]; });
  }
  c.outputs[0] = std::move(out);
  return ok();
}

Error kGemm(KernelContext &c) {
  if (!c.in(0) || !c.in(1))
    return c.fail("needs A and B");
  if (c.in(0)->dtype() == DType::F32) return gemmTyped<float>(c);
  if (c.in(0)->dtype() == DType::F64) return gemmTyped<double>(c);
  return c.fail("unsupported type " + dtypeName(c.in(0)->dtype()));
}

//===----------------------------------------------------------------------===//
// Convolution and pooling
//===----------------------------------------------------------------------===//

/// Spatial geometry shared by Conv, ConvTranspose and pools, always 3-D
/// (1-D and 2-D windows get leading size-1 axes).
struct Window {
  int64_t spatial = 0; // original number of spatial axes
  std::array<int64_t, 3> in{1, 1, 1}, out{1, 1, 1}, kernel{1, 1, 1}, stride{1, 1, 1},
      dilation{1, 1, 1}, padBegin{0, 0, 0}, padEnd{0, 0, 0};
};

/// Fills kernel/stride/dilation/pads from the node's attributes for a
/// convolution-like op whose input spatial sizes are `inSizes`.
Error window(KernelContext &c, ArrayRef<int64_t> inSizes, ArrayRef<int64_t> kernelSizes,
             Window &w, bool ceilMode = false) {
  int64_t r = inSizes.size();
  if (r < 1 || r > 3)
    return c.fail(llvm::Twine(r) + "-D windows are not supported (1-D to 3-D are)");
  w.spatial = r;
  auto strides = c.ints("strides"), dilations = c.ints("dilations"), pads = c.ints("pads");
  std::string autoPad = c.s("auto_pad", "NOTSET");
  int64_t off = 3 - r;
  for (int64_t i = 0; i < r; ++i) {
    int64_t j = off + i;
    w.in[j] = inSizes[i];
    w.kernel[j] = kernelSizes[i];
    w.stride[j] = strides ? (*strides)[i] : 1;
    w.dilation[j] = dilations ? (*dilations)[i] : 1;
    int64_t extent = (w.kernel[j] - 1) * w.dilation[j] + 1;
    if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
      int64_t o = (w.in[j] + w.stride[j] - 1) / w.stride[j];
      int64_t total = std::max<int64_t>(0, (o - 1) * w.stride[j] + extent - w.in[j]);
      w.padBegin[j] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
      w.padEnd[j] = total - w.padBegin[j];
    } else if (autoPad == "VALID") {
      w.padBegin[j] = w.padEnd[j] = 0;
    } else if (pads) {
      if ((int64_t)pads->size() != 2 * r)
        return c.fail("pads has the wrong length");
      w.padBegin[j] = (*pads)[i];
      w.padEnd[j] = (*pads)[i + r];
    }
    int64_t span = w.in[j] + w.padBegin[j] + w.padEnd[j] - extent;
    if (span < 0)
      return c.fail("the window is larger than the padded input");
    int64_t o = ceilMode ? (span + w.stride[j] - 1) / w.stride[j] + 1 : span / w.stride[j] + 1;
    // A last window that starts in the end padding is dropped.
    if (ceilMode && (o - 1) * w.stride[j] >= w.in[j] + w.padBegin[j])
      --o;
    w.out[j] = o;
  }
  return ok();
}

/// Unfolds one image's channels [C, in...] into [C*K, out...] columns.
template <typename T>
void im2col(const T *x, int64_t channels, const Window &w, T *col) {
  int64_t outSize = w.out[0] * w.out[1] * w.out[2];
  int64_t inPlane = w.in[0] * w.in[1] * w.in[2];
  for (int64_t ch = 0; ch < channels; ++ch) {
    const T *xc = x + ch * inPlane;
    for (int64_t kd = 0; kd < w.kernel[0]; ++kd)
      for (int64_t kh = 0; kh < w.kernel[1]; ++kh)
        for (int64_t kw = 0; kw < w.kernel[2]; ++kw) {
          T *dst = col;
          col += outSize;
          for (int64_t od = 0; od < w.out[0]; ++od) {
            int64_t id = od * w.stride[0] - w.padBegin[0] + kd * w.dilation[0];
            for (int64_t oh = 0; oh < w.out[1]; ++oh) {
              int64_t ih = oh * w.stride[1] - w.padBegin[1] + kh * w.dilation[1];
              T *row = dst + (od * w.out[1] + oh) * w.out[2];
              if (id < 0 || id >= w.in[0] || ih < 0 || ih >= w.in[1]) {
                std::fill(row, row + w.out[2], T(0));
                continue;
              }
              const T *src = xc + (id * w.in[1] + ih) * w.in[2];
              int64_t iw = -w.padBegin[2] + kw * w.dilation[2];
              if (w.stride[2] == 1 && iw >= 0 && iw + w.out[2] <= w.in[2]) {
                std::copy(src + iw, src + iw + w.out[2], row);
                continue;
              }
              for (int64_t ow = 0; ow < w.out[2]; ++ow, iw += w.stride[2])
                row[ow] = (iw >= 0 && iw < w.in[2]) ? src[iw] : T(0);
            }
          }
        }
  }
}

/// The inverse scatter-add of im2col (for ConvTranspose): `col` is
/// [C*K, in...] and accumulates into the image [C, out...], where the roles
/// of `in` and `out` are those of the forward convolution.
template <typename T>
void col2im(const T *col, int64_t channels, const Window &w, T *y) {
  int64_t colSize = w.out[0] * w.out[1] * w.out[2];
  int64_t imgPlane = w.in[0] * w.in[1] * w.in[2];
  for (int64_t ch = 0; ch < channels; ++ch) {
    T *yc = y + ch * imgPlane;
    for (int64_t kd = 0; kd < w.kernel[0]; ++kd)
      for (int64_t kh = 0; kh < w.kernel[1]; ++kh)
        for (int64_t kw = 0; kw < w.kernel[2]; ++kw) {
          const T *src = col;
          col += colSize;
          for (int64_t od = 0; od < w.out[0]; ++od) {
            int64_t id = od * w.stride[0] - w.padBegin[0] + kd * w.dilation[0];
            if (id < 0 || id >= w.in[0])
              continue;
            for (int64_t oh = 0; oh < w.out[1]; ++oh) {
              int64_t ih = oh * w.stride[1] - w.padBegin[1] + kh * w.dilation[1];
              if (ih < 0 || ih >= w.in[1])
                continue;
              const T *row = src + (od * w.out[1] + oh) * w.out[2];
              T *dst = yc + (id * w.in[1] + ih) * w.in[2];
              int64_t iw = -w.padBegin[2] + kw * w.dilation[2];
              for (int64_t ow = 0; ow < w.out[2]; ++ow, iw += w.stride[2])
                if (iw >= 0 && iw < w.in[2])
                  dst[iw] += row[ow];
            }
          }
        }
  }
}

Shape spatialShape(const Window &w, int64_t n, int64_t c, bool useOut) {
  Shape s = {n, c};
  for (int64_t j = 3 - w.spatial; j < 3; ++j)
    s.push_back(useOut ? w.out[j] : w.in[j]);
  return s;
}

/// y = conv(x, w) + b in type T; `x` [N, C, ...], `wt` [M, C/g, k...].
template <typename T>
Error convTyped(KernelContext &c, const T *x, ArrayRef<int64_t> xShape, const T *wt,
                ArrayRef<int64_t> wShape, const T *bias, Tensor &result) {
  if (xShape.size() < 3 || xShape.size() != wShape.size())
    return c.fail("input " + shapeString(xShape) + " and weight " + shapeString(wShape) +
                  " ranks do not fit");
  int64_t n = xShape[0], channels = xShape[1], m = wShape[0];
  int64_t group = c.i("group", 1);
  if (group <= 0 || channels % group || m % group || wShape[1] * group != channels)
    return c.fail("input channels " + llvm::Twine(channels) + ", weight " + shapeString(wShape) +
                  " and group " + llvm::Twine(group) + " do not fit");
  Window w;
  if (auto err = window(c, xShape.drop_front(2), wShape.drop_front(2), w))
    return err;
  int64_t cg = channels / group, mg = m / group;
  int64_t kernelSize = w.kernel[0] * w.kernel[1] * w.kernel[2];
  int64_t outSize = w.out[0] * w.out[1] * w.out[2];
  int64_t inPlane = w.in[0] * w.in[1] * w.in[2];
  Tensor out(dtypeOf<T>(), spatialShape(w, n, m, true));
  if (cg == 1 && mg == 1 && w.in[0] == 1) {
    // Depthwise 1-D/2-D: a direct loop beats one tiny GEMM per channel.
    for (int64_t b = 0; b < n; ++b)
      for (int64_t ch = 0; ch < channels; ++ch) {
        const T *xc = x + (b * channels + ch) * inPlane;
        const T *wc = wt + ch * kernelSize;
        T *yc = out.data<T>() + (b * m + ch) * outSize;
        std::fill(yc, yc + outSize, bias ? bias[ch] : T(0));
        for (int64_t kh = 0; kh < w.kernel[1]; ++kh)
          for (int64_t kw = 0; kw < w.kernel[2]; ++kw) {
            T weight = wc[kh * w.kernel[2] + kw];
            int64_t iw0 = -w.padBegin[2] + kw * w.dilation[2];
            for (int64_t oh = 0; oh < w.out[1]; ++oh) {
              int64_t ih = oh * w.stride[1] - w.padBegin[1] + kh * w.dilation[1];
              if (ih < 0 || ih >= w.in[1])
                continue;
              const T *src = xc + ih * w.in[2];
              T *dst = yc + oh * w.out[2];
              if (w.stride[2] == 1) {
                int64_t lo = std::max<int64_t>(0, -iw0);
                int64_t hi = std::min<int64_t>(w.out[2], w.in[2] - iw0);
                for (int64_t ow = lo; ow < hi; ++ow)
                  dst[ow] += weight * src[iw0 + ow];
              } else {
                for (int64_t ow = 0, iw = iw0; ow < w.out[2]; ++ow, iw += w.stride[2])
                  if (iw >= 0 && iw < w.in[2])
                    dst[ow] += weight * src[iw];
              }
            }
          }
      }
    result = std::move(out);
    return ok();
  }
  bool pointwise = kernelSize == 1 && w.stride == std::array<int64_t, 3>{1, 1, 1} &&
                   w.padBegin == std::array<int64_t, 3>{0, 0, 0} &&
                   w.padEnd == std::array<int64_t, 3>{0, 0, 0};
  std::vector<T> col(pointwise ? 0 : cg * kernelSize * outSize);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t g = 0; g < group; ++g) {
      const T *xg = x + (b * channels + g * cg) * inPlane;
      const T *colData = xg;
      if (!pointwise) {
        im2col(xg, cg, w, col.data());
        colData = col.data();
      }
      CMapM<T> W(wt + g * mg * cg * kernelSize, mg, cg * kernelSize);
      CMapM<T> X(colData, cg * kernelSize, outSize);
      MapM<T> Y(out.data<T>() + (b * m + g * mg) * outSize, mg, outSize);
      Y.noalias() = W * X;
      if (bias)
        for (int64_t o = 0; o < mg; ++o)
          Y.row(o).array() += bias[g * mg + o];
    }
  result = std::move(out);
  return ok();
}

Error kConv(KernelContext &c) {
  const Tensor *x = c.in(0), *w = c.in(1), *b = c.in(2);
  if (!x || !w)
    return c.fail("needs X and W");
  if (x->dtype() != w->dtype() || (b && b->dtype() != x->dtype()))
    return c.fail("inputs have different types");
  if (b && (b->rank() != 1 || b->dim(0) != w->dim(0)))
    return c.fail("bias must have one value per output channel");
  if (x->dtype() == DType::F32)
    return convTyped<float>(c, x->data<float>(), x->shape(), w->data<float>(), w->shape(),
                            b ? b->data<float>() : nullptr, c.outputs[0]);
  if (x->dtype() == DType::F64)
    return convTyped<double>(c, x->data<double>(), x->shape(), w->data<double>(), w->shape(),
                             b ? b->data<double>() : nullptr, c.outputs[0]);
  return c.fail("unsupported type " + dtypeName(x->dtype()));
}

template <typename T>
Error convTransposeTyped(KernelContext &c, const Tensor &x, const Tensor &wt, const Tensor *bias) {
  if (x.rank() < 3 || x.rank() != wt.rank())
    return c.fail("input and weight ranks do not fit");
  int64_t n = x.dim(0), channels = x.dim(1), group = c.i("group", 1);
  if (group <= 0 || wt.dim(0) != channels || channels % group)
    return c.fail("weight " + shapeString(wt.shape()) + " does not fit " + llvm::Twine(channels) +
                  " input channels and group " + llvm::Twine(group));
  int64_t mg = wt.dim(1), m = mg * group, cg = channels / group;
  int64_t r = x.rank() - 2;
  auto strides = c.ints("strides"), dilations = c.ints("dilations"), pads = c.ints("pads");
  auto outputPadding = c.ints("output_padding"), outputShape = c.ints("output_shape");
  std::string autoPad = c.s("auto_pad", "NOTSET");
  // Geometry of the equivalent forward convolution: its input is our output.
  Window w;
  w.spatial = r;
  int64_t off = 3 - r;
  for (int64_t i = 0; i < r; ++i) {
    int64_t j = off + i;
    w.kernel[j] = wt.dim(2 + i);
    w.stride[j] = strides ? (*strides)[i] : 1;
    w.dilation[j] = dilations ? (*dilations)[i] : 1;
    w.out[j] = x.dim(2 + i);
    int64_t extent = (w.kernel[j] - 1) * w.dilation[j] + 1;
    int64_t outPad = outputPadding ? (*outputPadding)[i] : 0;
    if (outputShape || autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
      int64_t target = outputShape ? (*outputShape)[outputShape->size() - r + i]
                                   : x.dim(2 + i) * w.stride[j];
      int64_t total = w.stride[j] * (x.dim(2 + i) - 1) + outPad + extent - target;
      total = std::max<int64_t>(total, 0);
      if (autoPad == "SAME_UPPER") {
        w.padBegin[j] = total / 2;
        w.padEnd[j] = total - total / 2;
      } else {
        w.padBegin[j] = total - total / 2;
        w.padEnd[j] = total / 2;
      }
      w.in[j] = target;
    } else {
      if (pads) {
        w.padBegin[j] = (*pads)[i];
        w.padEnd[j] = (*pads)[i + r];
      }
      w.in[j] = w.stride[j] * (x.dim(2 + i) - 1) + outPad + extent - w.padBegin[j] - w.padEnd[j];
    }
  }
  int64_t kernelSize = w.kernel[0] * w.kernel[1] * w.kernel[2];
  int64_t inSize = w.out[0] * w.out[1] * w.out[2];
  int64_t outPlane = w.in[0] * w.in[1] * w.in[2];
  Tensor out(dtypeOf<T>(), spatialShape(w, n, m, false));
  std::fill(out.data<T>(), out.data<T>() + out.size(), T(0));
  std::vector<T> col(mg * kernelSize * inSize);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t g = 0; g < group; ++g) {
      CMapM<T> W(wt.data<T>() + g * cg * mg * kernelSize, cg, mg * kernelSize);
      CMapM<T> X(x.data<T>() + (b * channels + g * cg) * inSize, cg, inSize);
      MapM<T> Col(col.data(), mg * kernelSize, inSize);
      Col.noalias() = W.transpose() * X;
      col2im(col.data(), mg, w, out.data<T>() + (b * m + g * mg) * outPlane);
    }
  if (bias)
    for (int64_t b = 0; b < n; ++b)
      for (int64_t o = 0; o < m; ++o) {
        T *p = out.data<T>() + (b * m + o) * outPlane;
        T v = bias->data<T>()[o];
        for (int64_t i = 0; i < outPlane; ++i)
          p[i] += v;
      }
  c.outputs[0] = std::move(out);
  return ok();
}

Error kConvTranspose(KernelContext &c) {
  const Tensor *x = c.in(0), *w = c.in(1);
  if (!x || !w || x->dtype() != w->dtype())
    return c.fail("needs X and W of one type");
  if (x->dtype() == DType::F32) return convTransposeTyped<float>(c, *x, *w, c.in(2));
  if (x->dtype() == DType::F64) return convTransposeTyped<double>(c, *x, *w, c.in(2));
  return c.fail("unsupported type " + dtypeName(x->dtype()));
}

template <typename T>
Error poolTyped(KernelContext &c, bool isMax) {
  const Tensor &x = *c.in(0);
  auto kernel = c.ints("kernel_shape");
  if (!kernel)
    return c.fail("needs kernel_shape");
  if (x.rank() != (int64_t)kernel->size() + 2)
    return c.fail("kernel_shape does not fit the input rank");
  bool columnMajor = c.i("storage_order", 0) != 0;
  if (columnMajor && kernel->size() != 2)
    return c.fail("storage_order = 1 is supported for 2-D pooling only");
  Window w;
  if (auto err = window(c, x.shape().drop_front(2), *kernel, w, c.i("ceil_mode", 0) != 0))
    return err;
  bool countPad = c.i("count_include_pad", 0) != 0;
  int64_t n = x.dim(0), channels = x.dim(1);
  int64_t inPlane = w.in[0] * w.in[1] * w.in[2], outPlane = w.out[0] * w.out[1] * w.out[2];
  Tensor out(dtypeOf<T>(), spatialShape(w, n, channels, true));
  bool wantIndices = isMax && c.numOutputs > 1;
  Tensor indices;
  if (wantIndices)
    indices = Tensor(DType::I64, out.shape());
  for (int64_t nc = 0; nc < n * channels; ++nc) {
    const T *src = x.data<T>() + nc * inPlane;
    T *dst = out.data<T>() + nc * outPlane;
    for (int64_t od = 0; od < w.out[0]; ++od)
      for (int64_t oh = 0; oh < w.out[1]; ++oh)
        for (int64_t ow = 0; ow < w.out[2]; ++ow) {
          std::array<int64_t, 3> o = {od, oh, ow};
          double acc = isMax ? -std::numeric_limits<double>::infinity() : 0;
          int64_t best = -1, valid = 0, padded = 1;
          for (int k = 0; k < 3; ++k) {
            int64_t start = o[k] * w.stride[k] - w.padBegin[k];
            int64_t end = std::min(start + (w.kernel[k] - 1) * w.dilation[k] + 1,
                                   w.in[k] + w.padEnd[k]);
            padded *= (end - start + w.dilation[k] - 1) / w.dilation[k];
          }
          for (int64_t kd = 0; kd < w.kernel[0]; ++kd) {
            int64_t id = od * w.stride[0] - w.padBegin[0] + kd * w.dilation[0];
            if (id < 0 || id >= w.in[0]) continue;
            for (int64_t kh = 0; kh < w.kernel[1]; ++kh) {
              int64_t ih = oh * w.stride[1] - w.padBegin[1] + kh * w.dilation[1];
              if (ih < 0 || ih >= w.in[1]) continue;
              for (int64_t kw = 0; kw < w.kernel[2]; ++kw) {
                int64_t iw = ow * w.stride[2] - w.padBegin[2] + kw * w.dilation[2];
                if (iw < 0 || iw >= w.in[2]) continue;
                int64_t at = (id * w.in[1] + ih) * w.in[2] + iw;
                double v = src[at];
                ++valid;
                if (isMax) {
                  if (v > acc || best < 0) { acc = v; best = at; }
                } else {
                  acc += v;
                }
              }
            }
          }
          int64_t at = (od * w.out[1] + oh) * w.out[2] + ow;
          if (isMax) {
            dst[at] = T(acc);
            if (wantIndices) {
              int64_t index = best;
              if (columnMajor) // (h, w) -> w * H + h
                index = (best % w.in[2]) * w.in[1] + best / w.in[2];
              indices.data<int64_t>()[nc * outPlane + at] = nc * inPlane + index;
            }
          } else {
            dst[at] = T(acc / double(countPad ? padded : std::max<int64_t>(valid, 1)));
          }
        }
  }
  c.outputs[0] = std::move(out);
  if (wantIndices)
    c.outputs[1] = std::move(indices);
  return ok();
}

Error kMaxPool(KernelContext &c) {
  if (!c.in(0)) return c.fail("needs an input");
  if (c.in(0)->dtype() == DType::F32) return poolTyped<float>(c, true);
  if (c.in(0)->dtype() == DType::F64) return poolTyped<double>(c, true);
  if (c.in(0)->dtype() == DType::U8) return poolTyped<uint8_t>(c, true);
  if (c.in(0)->dtype() == DType::I8) return poolTyped<int8_t>(c, true);
  return c.fail("unsupported type " + dtypeName(c.in(0)->dtype()));
}

Error kAveragePool(KernelContext &c) {
  if (!c.in(0)) return c.fail("needs an input");
  if (c.in(0)->dtype() == DType::F32) return poolTyped<float>(c, false);
  if (c.in(0)->dtype() == DType::F64) return poolTyped<double>(c, false);
  return c.fail("unsupported type " + dtypeName(c.in(0)->dtype()));
}

Error globalPool(KernelContext &c, bool isMax) {
  const Tensor *x = c.in(0);
  if (!x || x->rank() < 2)
    return c.fail("needs an input of rank >= 2");
  Shape shape(x->shape());
  for (size_t i = 2; i < shape.size(); ++i)
    shape[i] = 1;
  int64_t plane = x->size() / std::max<int64_t>(x->dim(0) * x->dim(1), 1);
  Tensor out(x->dtype(), shape);
  bool handled = dispatchFloat(x->dtype(), [&](auto t) {
    using T = decltype(t);
    for (int64_t i = 0; i < x->dim(0) * x->dim(1); ++i) {
      Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>> v(x->data<T>() + i * plane, plane);
      out.data<T>()[i] = isMax ? v.maxCoeff() : v.mean();
    }
  });
  if (!handled)
    return c.fail("unsupported type " + dtypeName(x->dtype()));
  c.outputs[0] = std::move(out);
  return ok();
}
Error kGlobalAveragePool(KernelContext &c) { return globalPool(c, false); }
Error kGlobalMaxPool(KernelContext &c) { return globalPool(c, true); }

} // namespace

Error matmulDouble(KernelContext &c, const Tensor &a, const Tensor &b, Tensor &out) {
  return matmulTyped<double>(c, a, b, out);
}

Error convDouble(KernelContext &c, const double *x, ArrayRef<int64_t> xShape, const double *w,
                 ArrayRef<int64_t> wShape, const double *bias, Tensor &out) {
  return convTyped<double>(c, x, xShape, w, wShape, bias, out);
}

void registerLinalgKernels(llvm::StringMap<Kernel> &registry) {
  registry["AveragePool"] = kAveragePool;
  registry["Conv"] = kConv;
  registry["ConvTranspose"] = kConvTranspose;
  registry["Gemm"] = kGemm;
  registry["GlobalAveragePool"] = kGlobalAveragePool;
  registry["GlobalMaxPool"] = kGlobalMaxPool;
  registry["MatMul"] = kMatMul;
  registry["MaxPool"] = kMaxPool;
}

} // namespace refold::interp
