//===- Quantizer.h - int8 post-training quantization ------------*- C++ -*-===//
//
// The pieces the quantization passes share: calibration data read one
// input set at a time, value ranges accumulated through the interpreter
// (memory does not grow with the number of sets), the scales and zero
// points chosen from them, and the measurement of what quantization cost.
//
//===----------------------------------------------------------------------===//

#ifndef REFOLD_QUANTIZER_QUANTIZER_H
#define REFOLD_QUANTIZER_QUANTIZER_H

#include "refold/Interpreter/Interpreter.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/Support/Error.h"

#include <limits>
#include <string>
#include <vector>

namespace refold::quant {

/// The attribute on an op holding [min, max] per result (an empty array
/// for a result without a range), and on the graph function for its inputs.
inline constexpr llvm::StringLiteral kRangesAttr = "refold.ranges";
inline constexpr llvm::StringLiteral kInputRangesAttr = "refold.input_ranges";

/// Calibration input sets: a directory of NAME.npy files (one set), a
/// directory in ONNX's test-data layout (test_data_set_*/input_*.pb, one
/// set each), or, for a single-input model, one .npy whose first dimension
/// counts the samples. Sets are read when asked for (a sample of a large
/// .npy too: the file is never loaded whole).
class CalibrationData {
public:
  static llvm::Expected<CalibrationData> open(llvm::StringRef path, mlir::ModuleOp module,
                                              size_t limit);
  size_t size() const { return count; }
  /// The i-th input set, named as the model's inputs.
  llvm::Expected<interp::TensorMap> load(size_t i) const;
  /// Runs the first `sets` input sets (at most size()) through `module` in
  /// the interpreter, one at a time, with `options` (its observe hook is
  /// how callers gather statistics); `afterEach(i)` after set i. Errors
  /// name `what` and the set.
  llvm::Error runEach(mlir::ModuleOp module, const interp::RunOptions &options, size_t sets,
                      llvm::StringRef what,
                      llvm::function_ref<void(size_t)> afterEach = {}) const;
  std::string describe() const;

private:
  enum class Layout { NamedNpy, TestData, Batched } layout = Layout::NamedNpy;
  std::string path;
  std::vector<std::string> inputNames;
  std::vector<std::string> setDirs; // TestData
  interp::NpyHeader batch;          // Batched: read one sample at a time
  size_t count = 0;
};

struct Range {
  float min = std::numeric_limits<float>::infinity();
  float max = -std::numeric_limits<float>::infinity();
  bool valid() const { return min <= max; }
  void add(const interp::Tensor &t);
};

/// Per-channel (axis 1) means of values.
using ChannelMeans = llvm::DenseMap<mlir::Value, std::vector<float>>;

/// How a tensor's quantization range is chosen from what calibration saw:
/// its min and max, or a clipped range from its histogram (the |x| below
/// which `percentile` % of the values lie; the threshold of least KL
/// divergence at 128 levels a side, 256 without negatives; the threshold
/// of least expected squared error at 256 levels).
enum class RangeMethod { MinMax, Percentile, Entropy, MSE };
std::optional<RangeMethod> parseRangeMethod(llvm::StringRef name);
struct RangeOptions {
  RangeMethod method = RangeMethod::MinMax;
  double percentile = 99.99;
};

/// Counts of a tensor's values in kBins bins of `width` on each side of 0
/// (bin b holds |x| in [b * width, (b + 1) * width)). A value past the last
/// bin doubles the width and merges bin pairs, so memory stays fixed.
struct Histogram {
  static constexpr int kBins = 2048;
  double width = 0;
  std::vector<double> positive, negative;
  void add(const interp::Tensor &t);
};

/// The range to quantize over: `seen` (min/max) for MinMax, else the
/// clipped range the histogram suggests, never wider than `seen`.
Range chooseRange(const Range &seen, const Histogram &histogram, const RangeOptions &options);

/// Runs every calibration set through the interpreter and keeps the
/// min/max (and, for the histogram methods, a histogram) of every float32
/// value (graph inputs and op results); returns each value's chosen range.
/// Progress goes to stderr once a run takes longer than a second.
struct Calibrated {
  llvm::DenseMap<mlir::Value, Range> ranges;
  ChannelMeans means; // per channel (axis 1) of every float value of rank >= 2
};
llvm::Expected<Calibrated> collectRanges(mlir::ModuleOp module, const CalibrationData &data,
                                         const RangeOptions &options, bool progress);

/// Records ranges as kRangesAttr / kInputRangesAttr, replacing old ones.
void attachRanges(mlir::ModuleOp module, const llvm::DenseMap<mlir::Value, Range> &ranges);

/// The recorded range of `value`, if calibration saw it.
std::optional<Range> rangeOf(mlir::Value value);
/// Records `range` as the range of `value`, replacing what was there.
void setRangeOf(mlir::Value value, const Range &range);

/// Output-driven range search: with `quantize` (the QDQ rewrite, applied to
/// a copy), each quantized activation tensor's recorded range is scaled by
/// each of `factors` in turn, in graph order, and the factor that raises the
/// mean output SQNR against the float model (on the first `sets`
/// calibration sets) by more than `minGainDb` is kept. Trials stop when
/// they would pass `budgetGmacs` billion multiply-accumulates
/// (`macsPerSet` a run); the tensors after that keep their ranges.
struct RangeSearchOptions {
  size_t sets = 16;
  std::vector<double> factors = {0.8, 0.9, 1.1, 1.25};
  double minGainDb = 0.005;
  double budgetGmacs = 250;
  bool progress = false;
};
struct RangeSearchResult {
  double before = 0, after = 0; // mean output SQNR, dB
  size_t candidates = 0, searched = 0, changed = 0, trials = 0;
  double trialGmacs = 0; // one trial's multiply-accumulates, billions
  bool skipped = false;  // the budget does not cover one tensor's trials
};
using QuantizeTrial = llvm::function_ref<mlir::LogicalResult(mlir::ModuleOp)>;
llvm::Expected<RangeSearchResult> searchRanges(mlir::ModuleOp calibrated,
                                               const CalibrationData &data,
                                               QuantizeTrial quantize,
                                               const RangeSearchOptions &options,
                                               uint64_t macsPerSet);

/// Per-channel means (axis 1) of values, for bias correction: kMeansAttr on
/// each op (one array per result, empty when unknown), kInputMeansAttr on
/// the graph.
inline constexpr llvm::StringLiteral kMeansAttr = "refold.means";
inline constexpr llvm::StringLiteral kInputMeansAttr = "refold.input_means";
void attachMeans(mlir::ModuleOp module, const ChannelMeans &means);
std::optional<std::vector<float>> meansOf(mlir::Value value);

/// Data-free ranges: the graph's inputs are taken as uniform over
/// [inputMin, inputMax]; every value with known moments gets mean +-
/// `sigmas` deviations (per channel, then over channels), cut to the
/// bounds its ops impose.
struct DataFreeOptions {
  double inputMin = -3, inputMax = 3;
  double sigmas = 6;
};
struct DataFreeEstimate {
  llvm::DenseMap<mlir::Value, Range> ranges;
  ChannelMeans means;
};
DataFreeEstimate estimateRanges(mlir::func::FuncOp graph, const DataFreeOptions &options);

/// Scale and zero point of an asymmetric per-tensor activation
/// quantization over `range` (widened to contain 0, so that zero padding
/// and Relu's zero are exact), to uint8 [0, 255] or int8 [-128, 127].
struct ActivationParams {
  float scale;
  int32_t zeroPoint;
};
ActivationParams activationParams(Range range, bool isUnsigned);

/// Symmetric int8 scales (zero point 0, values in [-127, 127]) of a weight,
/// one per index of `axis` or one for the whole tensor. A channel of zeros
/// gets scale 1.
std::vector<float> weightScales(llvm::ArrayRef<float> w, llvm::ArrayRef<int64_t> shape,
                                int64_t axis, bool perChannel);

/// The int8 weight scales a layer's weight was rounded for (weight
/// rounding); the QDQ rewrite uses them instead of max |w| / 127.
inline constexpr llvm::StringLiteral kWeightScalesAttr = "refold.weight_scales";
/// The rounded weight (float values on the grid of kWeightScalesAttr) the
/// QDQ rewrite quantizes instead of the layer's float weight operand, which
/// stays exact for a layer kept in float.
inline constexpr llvm::StringLiteral kRoundedWeightAttr = "refold.rounded_weight";

struct RoundingOptions {
  bool perChannel = true;
  double damp = 0.01;         // added to H's diagonal, times its mean
  int64_t maxColumns = 2304;  // larger layers (K x K doubles: 42 MB) round to nearest
  size_t maxSets = 64;        // calibration sets the statistics are gathered on
  bool progress = false;
};
/// GPTQ weight rounding (WeightRounding.cpp) of every 2-D conv (each group
/// on its own inputs, so depthwise too), Gemm and MatMul with a constant
/// weight of its own: statistics from `data` run through the interpreter,
/// then kRoundedWeightAttr and kWeightScalesAttr set on the layer. Returns
/// how many layers were rounded.
llvm::Expected<unsigned> roundWeights(mlir::ModuleOp module, const CalibrationData &data,
                                      const RoundingOptions &options);

struct ResidualEqualizationOptions {
  size_t maxSets = 64;   // calibration sets the channel ranges are measured on
  double maxScale = 16;  // largest scale given to one channel
  double exponent = 0.5; // s_c = (widest / range_c)^exponent
};
/// Residual-stream equalization (ResidualEqualization.cpp): for each set of
/// 4-D tensors joined by Adds and Relus that convs write and group-1 convs
/// read (and nothing else touches), channel c of every tensor is scaled by
/// min((widest / range_c)^exponent, maxScale), range_c its largest |x| over the
/// calibration sets: the writers' output channels and biases take the
/// scale, the readers' input channels its inverse. Exact in float. Returns
/// how many streams were rescaled.
llvm::Expected<unsigned> equalizeResiduals(mlir::ModuleOp module, const CalibrationData &data,
                                           const ResidualEqualizationOptions &options);

/// ONNX QuantizeLinear arithmetic: round half to even, then saturate.
int64_t quantizeValue(double x, double scale, int64_t zeroPoint, int64_t lo, int64_t hi);

/// What quantization cost, measured on calibration sets: for each graph
/// output the SQNR (dB) of the quantized model against the float one, the
/// largest absolute error and, for [N, K] outputs, the share of rows whose
/// arg-max agrees.
struct OutputCost {
  std::string name;
  double sqnrDb = 0, maxAbsError = 0;
  double top1Agreement = -1; // -1: not classifier-shaped
};
/// A quantized layer: the SQNR of its (dequantized) output against the
/// float model's, measured graph-wise (the quantized model run from the
/// input, so earlier layers' errors count), and of its int8 weight.
struct LayerCost {
  std::string name;       // the ONNX name of the layer's output
  std::string weightName; // the float weight it replaced
  double sqnrDb = 0, weightSqnrDb = 0;
  double rangeMin = 0, rangeMax = 0; // the output's quantized range
  bool floatOutput = false;          // integer kernel, float result (no range)
};
struct CostReport {
  size_t sets = 0;
  std::vector<OutputCost> outputs;
  std::vector<LayerCost> layers; // in graph order
};
llvm::Expected<CostReport> measureCost(mlir::ModuleOp floatModel, mlir::ModuleOp quantModel,
                                       const CalibrationData &data, size_t maxSets);

} // namespace refold::quant

#endif // REFOLD_QUANTIZER_QUANTIZER_H
