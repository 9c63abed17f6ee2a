//===- MergeParallelBranches.cpp - a linear region on one input -> one conv ===//
//
// The ops between nonlinearities form a linear region: a sum (Add) or
// difference (Sub) of branches, each a 2-D Conv of x, an AveragePool of x
// counting its zero padding (a depthwise conv with taps 1/(kh*kw)), x itself,
// or such a branch under a per-channel map (BatchNormalization; Mul, Add,
// Sub or Div by a per-channel constant: FastViT's layer scale, OREPA's
// branch vectors), nested in any order. Every such region with one input
// x is one Conv of x whose kernel is the signed, scaled sum of the branch
// kernels, smaller kernels zero-padded into the centre of the largest and x
// itself a tap per channel (reparam-math.md §3, §5): RepVGG, ACNet, DBB,
// MobileOne, OREPA blocks, FastViT's RepMixer, residual identities.
//
// Exact when every branch sees the same input, stride and output shape,
// the groups nest (a grouped or depthwise branch joins a dense one with
// zeros off its groups), and the centres align: each kernel's padding,
// grown by half its size deficit, must equal the merged padding. Otherwise
// refused. A branch conv(x) + constant map (a border correction left by
// onnx-merge-sequential) merges too; the maps are summed into one Add.
//
//===----------------------------------------------------------------------===//

#include "refold/Passes/Explain.h"
#include "refold/Passes/Passes.h"
#include "refold/Transforms/ConvForms.h"
#include "refold/Transforms/LinearFold.h"
#include "refold/Transforms/WeightUtils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace refold {
#define GEN_PASS_DEF_MERGEPARALLELBRANCHES
#include "refold/Passes/Passes.h.inc"
} // namespace refold

using namespace mlir;
using namespace refold;
using namespace refold::ir;
using weights::F32Tensor;

namespace {

constexpr llvm::StringLiteral kDifferentInput = "a branch reads a different input";

/// A linear region as one conv of `input`: weights kept in double and
/// rounded once when the conv is written.
struct LinearForm {
  Value input;
  int64_t out = 0, inPerGroup = 0, kh = 1, kw = 1, group = 1;
  std::vector<double> weight; // [out, inPerGroup, kh, kw]
  std::vector<double> bias;
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 4> pads{0, 0, 0, 0};
  std::optional<F32Tensor> offset; // a constant [1, O, H, W] map added
  int terms = 0, convs = 0;
  Operation *firstConv = nullptr;
  SmallVector<Operation *> producers; // ops to erase once merged, consumers first

  int64_t inChannels() const { return inPerGroup * group; }
  double &at(int64_t o, int64_t i, int64_t y, int64_t x) {
    return weight[((o * inPerGroup + i) * kh + y) * kw + x];
  }
};

int64_t channelsOf(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  if (!t || t.getRank() != 4 || t.isDynamicDim(1))
    return -1;
  return t.getDimSize(1);
}

LinearForm fromConv(const ConvForm &conv) {
  LinearForm f;
  f.input = conv.input;
  f.out = conv.outChannels();
  f.inPerGroup = conv.weight.dim(1);
  f.kh = conv.kh(), f.kw = conv.kw();
  f.group = conv.group;
  f.weight.assign(conv.weight.data.begin(), conv.weight.data.end());
  f.bias.assign(conv.bias.begin(), conv.bias.end());
  f.stride = conv.stride;
  f.pads = conv.pads;
  f.terms = f.convs = 1;
  f.firstConv = conv.op;
  f.producers.push_back(conv.op);
  if (conv.pad)
    f.producers.push_back(conv.pad);
  return f;
}

/// x itself: a depthwise 1x1 kernel of ones.
LinearForm identity(Value x, int64_t channels) {
  LinearForm f;
  f.input = x;
  f.out = channels, f.inPerGroup = 1, f.group = channels;
  f.weight.assign(channels, 1.0);
  f.bias.assign(channels, 0.0);
  f.terms = 1;
  return f;
}

/// The same kernel with fewer groups (`group` divides the current count):
/// zeros off the old groups.
void regroup(LinearForm &f, int64_t group) {
  if (f.group == group)
    return;
  int64_t in = f.inChannels(), newPerGroup = in / group;
  int64_t oldOutPerGroup = f.out / f.group, newOutPerGroup = f.out / group;
  std::vector<double> w(f.out * newPerGroup * f.kh * f.kw, 0.0);
  int64_t kernel = f.kh * f.kw;
  for (int64_t o = 0; o < f.out; ++o) {
    int64_t firstOld = (o / oldOutPerGroup) * f.inPerGroup;
    int64_t firstNew = (o / newOutPerGroup) * newPerGroup;
    for (int64_t i = 0; i < f.inPerGroup; ++i)
      std::copy_n(f.weight.begin() + (o * f.inPerGroup + i) * kernel, kernel,
                  w.begin() + (o * newPerGroup + firstOld - firstNew + i) * kernel);
  }
  f.weight = std::move(w);
  f.inPerGroup = newPerGroup;
  f.group = group;
}

/// The kernel zero-padded into the centre of kh x kw, its padding grown to
/// match; fails when the size difference is odd.
LogicalResult recentre(LinearForm &f, int64_t kh, int64_t kw) {
  int64_t dh = kh - f.kh, dw = kw - f.kw;
  if (dh % 2 || dw % 2)
    return failure();
  if (dh == 0 && dw == 0)
    return success();
  std::vector<double> w(f.out * f.inPerGroup * kh * kw, 0.0);
  for (int64_t oi = 0; oi < f.out * f.inPerGroup; ++oi)
    for (int64_t y = 0; y < f.kh; ++y)
      for (int64_t x = 0; x < f.kw; ++x)
        w[(oi * kh + y + dh / 2) * kw + x + dw / 2] = f.weight[(oi * f.kh + y) * f.kw + x];
  f.weight = std::move(w);
  f.kh = kh, f.kw = kw;
  f.pads = {f.pads[0] + dh / 2, f.pads[1] + dw / 2, f.pads[2] + dh / 2, f.pads[3] + dw / 2};
  return success();
}

/// a + sign * b.
FailureOr<LinearForm> combine(LinearForm a, LinearForm b, double sign, std::string &why) {
  if (a.stride != b.stride)
    return why = "the branches differ in stride", failure();
  if (a.out != b.out || a.inChannels() != b.inChannels())
    return why = "the branches differ in channels", failure();
  if (a.group != b.group) {
    int64_t fewer = std::min(a.group, b.group), more = std::max(a.group, b.group);
    if (more % fewer)
      return why = "the branches have groups that do not nest", failure();
    regroup(a, fewer);
    regroup(b, fewer);
  }
  int64_t kh = std::max(a.kh, b.kh), kw = std::max(a.kw, b.kw);
  if (failed(recentre(a, kh, kw)) || failed(recentre(b, kh, kw)))
    return why = "kernel centres do not align (odd size difference)", failure();
  if (a.pads != b.pads)
    return why = "the branches' paddings do not align their centres", failure();
  if (llvm::any_of(a.pads, [](int64_t p) { return p < 0; }))
    return why = "the merged padding would be negative", failure();
  if (a.offset && b.offset && a.offset->shape != b.offset->shape)
    return why = "the branches' constant maps differ in shape", failure();
  for (size_t i = 0; i < a.weight.size(); ++i)
    a.weight[i] += sign * b.weight[i];
  for (int64_t o = 0; o < a.out; ++o)
    a.bias[o] += sign * b.bias[o];
  if (b.offset) {
    if (!a.offset)
      a.offset = F32Tensor(b.offset->shape);
    for (int64_t i = 0; i < a.offset->size(); ++i)
      a.offset->data[i] += float(sign * b.offset->data[i]);
  }
  a.terms += b.terms;
  a.convs += b.convs;
  if (!a.firstConv)
    a.firstConv = b.firstConv;
  a.producers.append(b.producers.begin(), b.producers.end());
  return a;
}

/// y * scale[o] + shift[o] applied to the region's output.
LogicalResult applyAffine(LinearForm &f, const ChannelAffine &affine, std::string &why) {
  if ((int64_t)affine.scale.size() != f.out)
    return why = "a per-channel map's length differs from the channels", failure();
  int64_t perOut = f.inPerGroup * f.kh * f.kw;
  for (int64_t o = 0; o < f.out; ++o) {
    double s = affine.scale[o];
    for (int64_t j = 0; j < perOut; ++j)
      f.weight[o * perOut + j] *= s;
    f.bias[o] = f.bias[o] * s + affine.shift[o];
    if (f.offset) {
      int64_t plane = f.offset->size() / f.out;
      for (int64_t j = 0; j < plane; ++j)
        f.offset->data[o * plane + j] *= float(s);
    }
  }
  return success();
}

/// `value` as a linear region of `input`, or why it is not one.
FailureOr<LinearForm> readRegion(Value value, Value input, std::string &why,
                                 bool isRoot = false) {
  if (value == input) {
    int64_t channels = channelsOf(input);
    if (channels < 0)
      return why = "an identity branch has no static channel count", failure();
    return identity(input, channels);
  }
  Operation *def = value.getDefiningOp();
  if (!def)
    return why = kDifferentInput, failure();
  if (!isRoot && !value.hasOneUse())
    return why = "a branch has other users", failure();
  if (isa<ConvOp, AveragePoolOp>(def)) {
    auto conv = readConvForm(def, why);
    if (failed(conv))
      return failure();
    if (conv->input != input)
      return why = kDifferentInput, failure();
    return fromConv(*conv);
  }
  if (!isa<AddOp, SubOp, MulOp, DivOp, BatchNormalizationOp>(def))
    return why = kDifferentInput, failure();
  // A per-channel map of one branch: BN, layer scales, branch vectors.
  std::string mapWhy;
  if (auto map = readChannelMap(def, mapWhy); succeeded(map)) {
    auto inner = readRegion(map->input, input, why);
    if (failed(inner) || failed(applyAffine(*inner, map->affine, why)))
      return failure();
    inner->producers.insert(inner->producers.begin(), def);
    return inner;
  }
  if (!isa<AddOp, SubOp>(def))
    return why = "a branch's " + def->getName().stripDialect().str() +
                 " is not a per-channel map: " + mapWhy,
           failure();
  double sign = isa<SubOp>(def) ? -1.0 : 1.0;
  // A branch plus a constant [1, O, H, W] map (a border correction).
  for (int side = 0; side < 2; ++side) {
    auto mapType = weights::constantF32Type(def->getOperand(side));
    if (!mapType)
      continue;
    // Decided from the type before the values are copied.
    if (mapType.getRank() != 4 || mapType.getDimSize(0) != 1 ||
        double(mapType.getNumElements()) != weights::staticElements(def->getResult(0)))
      return why = "a branch adds a constant that is not one [1, C, H, W] map", failure();
    auto map = weights::getConstantF32(def->getOperand(side));
    auto inner = readRegion(def->getOperand(1 - side), input, why);
    if (failed(inner))
      return failure();
    // c - branch negates the branch; branch - c negates the map.
    if (side == 0 && sign < 0)
      if (failed(applyAffine(*inner, {std::vector<float>(inner->out, -1.0f),
                                      std::vector<float>(inner->out, 0.0f)}, why)))
        return failure();
    double mapSign = side == 1 ? sign : 1.0;
    if (!inner->offset)
      inner->offset = F32Tensor(map->shape);
    for (int64_t i = 0; i < map->size(); ++i)
      inner->offset->data[i] += float(mapSign * map->data[i]);
    inner->producers.insert(inner->producers.begin(), def);
    return inner;
  }
  if (def->getOperand(0).getType() != def->getResult(0).getType() ||
      def->getOperand(1).getType() != def->getResult(0).getType())
    return why = "the sum broadcasts a branch", failure();
  auto a = readRegion(def->getOperand(0), input, why);
  if (failed(a))
    return failure();
  auto b = readRegion(def->getOperand(1), input, why);
  if (failed(b))
    return failure();
  auto sum = combine(std::move(*a), std::move(*b), sign, why);
  if (failed(sum))
    return failure();
  sum->producers.insert(sum->producers.begin(), def);
  return sum;
}

/// The values a region under `value` may read: `value` itself, conv inputs,
/// and those of the branches below sums and maps.
void collectInputs(Value value, SmallVectorImpl<Value> &inputs, int depth = 0) {
  if (llvm::is_contained(inputs, value) || inputs.size() >= 32 || depth > 64)
    return;
  inputs.push_back(value);
  Operation *def = value.getDefiningOp();
  if (!def || !value.hasOneUse())
    return;
  std::string ignored;
  if (isa<ConvOp, AveragePoolOp>(def)) {
    if (auto conv = readConvForm(def, ignored); succeeded(conv))
      collectInputs(conv->input, inputs, depth + 1);
    return;
  }
  if (isa<AddOp, SubOp, MulOp, DivOp, BatchNormalizationOp>(def))
    for (Value operand : def->getOperands())
      if (!weights::constantF32Type(operand))
        collectInputs(operand, inputs, depth + 1);
}

/// Output statistics of a sum whose terms each carry them (convs with a
/// folded BatchNorm, BatchNorms, nested sums) or are scalar constants:
/// means add; the standard deviation is bounded by the sum of the terms'
/// (they read the same input, so they are not independent).
std::optional<weights::ChannelStats> summedStats(Operation *sum, int depth = 0) {
  if (depth > 16 || !isa<AddOp>(sum))
    return std::nullopt;
  weights::ChannelStats total;
  std::vector<float> offsets;
  for (Value operand : sum->getOperands()) {
    if (auto type = weights::constantF32Type(operand)) {
      if (type.getNumElements() != 1)
        return std::nullopt;
      auto c = weights::getConstantF32(operand);
      offsets.push_back(c->data[0]);
      continue;
    }
    Operation *def = operand.getDefiningOp();
    auto stats = weights::getOutputStats(def);
    if (!stats)
      stats = weights::batchNormOutputStats(def);
    if (!stats && isa_and_nonnull<AddOp>(def))
      stats = summedStats(def, depth + 1);
    if (!stats)
      return std::nullopt;
    if (total.mean.empty()) {
      total = *stats;
      continue;
    }
    if (stats->mean.size() != total.mean.size())
      return std::nullopt;
    for (size_t c = 0; c < total.mean.size(); ++c) {
      total.mean[c] += stats->mean[c];
      total.std[c] += stats->std[c];
    }
  }
  if (total.mean.empty())
    return std::nullopt;
  for (float offset : offsets)
    for (float &m : total.mean)
      m += offset;
  return total;
}

template <typename SumOp> struct MergeRegion : OpRewritePattern<SumOp> {
  using OpRewritePattern<SumOp>::OpRewritePattern;

  LogicalResult matchAndRewrite(SumOp sum, PatternRewriter &rewriter) const override {
    SmallVector<Value> inputs;
    for (Value operand : sum->getOperands())
      if (!weights::constantF32Type(operand))
        collectInputs(operand, inputs);
    std::string why;
    FailureOr<LinearForm> region = failure();
    for (Value input : inputs) {
      std::string attempt;
      region = readRegion(sum.getC(), input, attempt, /*isRoot=*/true);
      if (succeeded(region) && region->terms < 2) {
        attempt = "nothing to merge: one branch"; // a lone affine is onnx-fold-affine's
        region = failure();
      } else if (succeeded(region) && region->convs == 0) {
        attempt = "no branch is a convolution";
        region = failure();
      }
      if (succeeded(region))
        break;
      // The most telling reason: one past "which input" if any attempt got there.
      if (why.empty() || (why == kDifferentInput && attempt != kDifferentInput))
        why = attempt;
    }
    if (failed(region))
      return rewriter.notifyMatchFailure(
          sum, why == kDifferentInput ? std::string("the branches read different inputs") : why);
    LinearForm &f = *region;
    if (f.out != channelsOf(sum.getC()))
      return rewriter.notifyMatchFailure(sum, "the sum's channels differ from the branches'");

    F32Tensor weight({f.out, f.inPerGroup, f.kh, f.kw});
    for (size_t i = 0; i < f.weight.size(); ++i)
      weight.data[i] = float(f.weight[i]);
    std::vector<float> bias(f.bias.begin(), f.bias.end());
    std::string base = weights::nameOf(sum.getC());
    Value result = createConv(rewriter, sum.getLoc(), f.input, weight, bias, f.group, f.stride,
                              f.pads, sum.getType(), base, f.firstConv,
                              f.offset ? nullptr : sum.getOperation());
    if (f.offset)
      result = createAddConstant(rewriter, sum.getLoc(), result, *f.offset, base, sum);
    else if (auto stats = summedStats(sum))
      weights::setOutputStats(result.getDefiningOp(), *stats);
    rewriter.replaceOp(sum, result);
    // Consumers come first: each producer is unused when its turn comes.
    for (Operation *producer : ArrayRef(f.producers).drop_front())
      if (producer->use_empty())
        rewriter.eraseOp(producer);
    return success();
  }
};

struct MergeParallelBranchesPass
    : refold::impl::MergeParallelBranchesBase<MergeParallelBranchesPass> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    patterns.add<MergeRegion<AddOp>, MergeRegion<SubOp>>(ctx);
    // Only sums are visited, so the driver never folds or moves initializers;
    // a merged inner sum makes the outer one mergeable and it is revisited.
    if (failed(applyToCandidates<AddOp, SubOp>(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace
