//===- Passes.td - refold passes -----------------------------*- tablegen -*-===//

#ifndef REFOLD_PASSES_TD
#define REFOLD_PASSES_TD

include "mlir/Pass/PassBase.td"

def Cleanup : Pass<"onnx-cleanup", "::mlir::func::FuncOp"> {
  let summary = "Remove no-op nodes, duplicate nodes and dead code";
  let description = [{
    Replaces by their input: `onnx.Identity`; `onnx.Dropout` in inference
    mode (no `training_mode` input, or a constant false one) with an unused
    mask; a Reshape to the same static shape; a Transpose by the identity
    permutation or undoing the Transpose before it; a Cast to the same type.
    Of several typed nodes with the same kind, inputs, attributes (names and
    doc strings aside) and result types, the first is kept (common
    subexpressions), except a duplicate that is a graph output. Then erases
    ops whose results are unused and have no side effects (unused
    initializers included). Generic nodes other than Cast are never merged
    or removed while used: a custom op may be random or stateful. Graph
    outputs keep their names: the exporter names a returned value after the
    output.
  }];
  let dependentDialects = ["::refold::ir::ONNXDialect"];
  let statistics = [
    Statistic<"numIdentity", "identity-removed", "Identity nodes removed">,
    Statistic<"numDropout", "dropout-removed", "Dropout nodes removed">,
    Statistic<"numNoOp", "no-op-removed", "no-op Reshape, Transpose and Cast nodes removed">,
    Statistic<"numDuplicates", "duplicates-removed", "duplicate nodes removed">,
    Statistic<"numDead", "dead-removed", "dead ops removed">
  ];
}

def InferShapes : Pass<"onnx-infer-shapes", "::mlir::ModuleOp"> {
  let summary = "Refine result types with ONNX shape inference";
  let description = [{
    Runs ONNX's shape inference (with data propagation) on the model as it
    is now and gives each node result the more static type it finds: after
    constant folding, shapes an exporter computed at run time (Pad pads,
    Reshape targets) are constants. A type is only refined (same element
    type and rank, known dimensions kept); graph outputs keep their
    declared types unless `graph-outputs` is set (C output needs every
    shape); inference failures leave every type as it was.
  }];
  let options = [
    Option<"graphOutputs", "graph-outputs", "bool", "false",
           "Refine the values the graph returns too">
  ];
  let statistics = [Statistic<"numRefined", "refined", "result types refined">];
}

def FoldConstants : Pass<"onnx-fold-constants", "::mlir::func::FuncOp"> {
  let summary = "Evaluate nodes whose inputs are all constants";
  let description = [{
    A node whose inputs are all initializers or constants is evaluated with
    the interpreter's kernel and replaced by an initializer; Shape of a
    statically shaped value becomes a constant. Refused for nodes the
    interpreter cannot run, nodes with subgraphs or custom domains, and when
    the result would be larger than both its inputs and `max-growth-bytes`.
  }];
  let options = [
    Option<"maxGrowthBytes", "max-growth-bytes", "uint64_t", "1 << 20",
           "Largest result that may exceed the size of the inputs it replaces">
  ];
  let statistics = [Statistic<"numFolded", "folded", "nodes folded">];
  let dependentDialects = ["::refold::ir::ONNXDialect"];
}

def FoldBatchNorm : Pass<"onnx-fold-batchnorm", "::mlir::func::FuncOp"> {
  let summary = "Fold BatchNormalization into the Conv, ConvTranspose, Gemm or MatMul before it";
  let description = [{
    BN(y) = y * s + t per output channel, s = scale / sqrt(var + eps),
    t = B - mean * s. The preceding linear op's weight is scaled by s along
    its output channels and t joins its bias (a 2-D MatMul becomes a Gemm).
    Refused when the linear op's output has other users, when weights or
    BN parameters are not float32 constants, for spatial=0 (opsets before
    9), or when channels disagree.
    A BN before an unpadded AveragePool (or count_include_pad=0), or before
    a MaxPool with all scales positive, moves after the pool.
  }];
  let options = [
    Option<"lowerUnfolded", "lower-unfolded", "bool", "false",
           "Rewrite a BN that folds nowhere as a 1x1 depthwise Conv (rank 4) or Mul + Add">
  ];
  let dependentDialects = ["::refold::ir::ONNXDialect"];
}

def FoldAffine : Pass<"onnx-fold-affine", "::mlir::func::FuncOp"> {
  let summary = "Fold per-channel constant Mul/Add/Sub/Div into a linear op before or after it, and Pad into Conv";
  let description = [{
    Mul, Add, Sub or Div by a float32 constant that varies only along the
    channel axis (or is a scalar), applied to the output of a Conv,
    ConvTranspose, Gemm or 2-D MatMul, folds into the linear op's weights
    and bias. The same map whose only user is a Conv (its input), a Gemm's
    A or a 2-D MatMul's A folds forward: a scale always, a shift before a
    zero-padding conv with a constant border-correction Add (2-D, static
    shape, output not larger than input). A zero constant Pad of the
    spatial axes before a Conv (input form, or the attribute form of opsets
    2-10) becomes the Conv's padding. Refused: a constant that varies along another axis
    or broadcasts the output, a constant divided by the output, division by
    zero, linear outputs with other users, Pad modes other than constant,
    non-zero pad values, padding of batch or channel axes, crops.
  }];
  let dependentDialects = ["::refold::ir::ONNXDialect"];
}

def MergeParallelBranches : Pass<"onnx-merge-parallel", "::mlir::func::FuncOp"> {
  let summary = "Merge a linear region (sums, differences, per-channel maps of convs of one input) into one Conv";
  let description = [{
    An Add or Sub whose operands are, in any nesting, convs of one input x,
    x itself, sums and differences of such branches, or a branch under a
    per-channel map (BN; Mul, Add, Sub or Div by a constant varying only
    along the channels) becomes one Conv of x: smaller kernels are
    zero-padded into the centre of the largest, x itself is one tap per
    channel, maps scale the branch kernels. Refused for different inputs,
    strides, channels, groups that do not nest, misaligned centres
    (odd size difference or padding that does not match), dilation,
    auto_pad, maps by non-constants, or branch outputs with other users.
  }];
  let dependentDialects = ["::refold::ir::ONNXDialect"];
}

def MergeSequentialConvs : Pass<"onnx-merge-sequential", "::mlir::func::FuncOp"> {
  let summary = "Merge conv -> conv with nothing nonlinear between into one conv";
  let description = [{
    conv2(conv1(x)) becomes one conv whose kernel composes both (size
    k1 + k2 - 1), with conv1's padding and conv2's stride; grouped and
    depthwise convs are expanded to dense. Refused: conv1 with a stride, a
    zero-padding conv2 (border outputs would differ) unless conv1 is 1x1
    without padding and bias, dilation, auto_pad, channel mismatch, conv1
    output with other users, and - with merge-policy=profitable - a merged
    conv that costs more (MACs + bytes-weight * bytes moved).
  }];
  let options = [
    Option<"mergePolicy", "merge-policy", "std::string", "\"profitable\"",
           "profitable (cost model decides), always, or never">,
    Option<"bytesWeight", "bytes-weight", "double", "4.0",
           "MACs one byte of memory traffic costs in the cost model">
  ];
  let dependentDialects = ["::refold::ir::ONNXDialect"];
}

def MergeLinear : Pass<"onnx-merge-linear", "::mlir::func::FuncOp"> {
  let summary = "Merge consecutive linear layers (MatMul[+Add] / Gemm) without nonlinearity";
  let description = [{
    (x W1 + b1) W2 + b2 becomes x (W1 W2) + (b1 W2 + b2): a Gemm for 2-D
    inputs, MatMul + Add otherwise. Refused: weights or biases that are not
    constants, a transposed A, a first layer with other users, layers that
    do not chain, and - with merge-policy=profitable - when m*n >= h*(m+n)
    (the merged layer would cost more than the two).
  }];
  let options = [
    Option<"mergePolicy", "merge-policy", "std::string", "\"profitable\"",
           "profitable (merge when cheaper), always, or never">
  ];
  let dependentDialects = ["::refold::ir::ONNXDialect"];
}

def MergeConcatConvs : Pass<"onnx-merge-concat", "::mlir::func::FuncOp"> {
  let summary = "Merge parallel convs on one input concatenated along channels into one conv";
  let description = [{
    Adjacent Concat inputs that are convs of the same input become one conv
    with the filters stacked (smaller kernels centred into the largest).
    Refused: different inputs or strides, groups, dilation, auto_pad,
    misaligned centres, branch outputs with other users, and - with
    merge-policy=profitable - a merge whose padded kernels cost more than the
    traffic it saves.
  }];
  let options = [
    Option<"mergePolicy", "merge-policy", "std::string", "\"profitable\"",
           "profitable, always, or never">
  ];
  let dependentDialects = ["::refold::ir::ONNXDialect"];
}

def ShrinkDeadChannels : Pass<"onnx-shrink-channels", "::mlir::func::FuncOp"> {
  let summary = "Remove conv output channels whose weights are all zero";
  let description = [{
    Such a channel (what structured channel pruning leaves) is its bias
    everywhere. Channel-by-channel ops on the way to the consumer convs
    (Relu, Sigmoid, HardSwish, Clip, BatchNormalization, a 1x1 depthwise
    conv, Mul/Add/Sub/Div by per-channel constants) map it to a constant c
    and lose the channel too. It is removed from the conv, the ops between
    and every consumer conv's input when c is zero, or when no consumer
    zero-pads (c times the consumer's taps joins its bias). Refused: grouped
    convs, non-constant weights, a consumer that is not a dense conv (an Add
    of two branches, a Concat, a graph output...), a non-zero c before a
    zero-padding consumer, dynamic channel counts, and a conv whose channels
    would all go.
  }];
  let dependentDialects = ["::refold::ir::ONNXDialect"];
}

def FixedPoint : Pass<"onnx-fixed-point", "::mlir::func::FuncOp"> {
  let summary = "Run a pipeline of function passes until the function stops changing";
  let description = [{
    Runs `pipeline` (function passes) over the function again and again until
    a round leaves it unchanged (same operation fingerprint) or `max-rounds`
    rounds have run: one merge makes another possible (a merged sum becomes a
    conv a per-channel scale folds into, which a residual sum then absorbs),
    whatever order the passes run in. The `rounds` statistic counts the
    rounds taken, the one that changed nothing included; `unconverged`
    counts functions stopped by the bound (a warning says so).
  }];
  let options = [
    Option<"pipeline", "pipeline", "std::string", "\"\"",
           "The function passes of one round, as a textual pipeline">,
    Option<"maxRounds", "max-rounds", "unsigned", "10",
           "Most rounds to run before giving up on a fixed point">
  ];
  let statistics = [
    Statistic<"numRounds", "rounds", "rounds run">,
    Statistic<"numUnconverged", "unconverged", "functions that did not reach a fixed point">
  ];
}

def QuantCalibrate : Pass<"onnx-quant-calibrate", "::mlir::ModuleOp"> {
  let summary = "Run calibration data through the interpreter and record every value's range";
  let description = [{
    Reads the input sets at `calibration` one at a time (a directory of
    NAME.npy files, ONNX's test_data_set_*/input_*.pb layout, or one .npy of
    samples for a single-input model), runs each through the interpreter and
    keeps the range to quantize every float32 value over: `refold.ranges` on
    each op ([min, max] per result), `refold.input_ranges` on the graph.
    `method` chooses it: `minmax` (what the sets reached), or, from a
    histogram of 2048 bins a side that widens as it streams, `percentile`
    (the default: the |x| below which `percentile` % of the values lie), `entropy` (the
    threshold of least KL divergence at 128 levels a side or 256 for a tensor
    without negative values, as TensorRT) or `mse`
    (the threshold of least expected squared error at 256 levels). Clipped
    ranges never reach past min/max. Memory does not grow with the number
    of sets.
  }];
  let options = [
    Option<"calibration", "calibration", "std::string", "\"\"",
           "Calibration data: a directory or a .npy of samples">,
    Option<"method", "method", "std::string", "\"percentile\"",
           "Range method: minmax, percentile, entropy or mse">,
    Option<"percentile", "percentile", "double", "99.99",
           "Share of values (%) inside the range, for method=percentile">,
    Option<"limit", "limit", "uint64_t", "0", "Use at most this many input sets (0: all)">,
    Option<"progress", "progress", "bool", "false",
           "Report progress on stderr when calibration takes more than a second">
  ];
  let dependentDialects = ["::refold::ir::ONNXDialect"];
}

def QuantRound : Pass<"onnx-quant-round", "::mlir::ModuleOp"> {
  let summary = "Round int8 weights against the calibration inputs' statistics (GPTQ)";
  let description = [{
    Runs the calibration sets through the interpreter and accumulates, for
    every 2-D conv, Gemm and MatMul with a constant weight of its own, the
    second moments H = E[x x^T] of what one output reads: a conv's im2col
    columns per group (K = input channels per group x taps, so a depthwise
    conv has one 9 x 9 H per channel), a Gemm's or MatMul's input rows
    (K = inputs). Layers with K over `max-columns` are left to nearest
    rounding. Then GPTQ: the weight's input columns are quantized one at a
    time on the scales nearest rounding would use (max |w| / 127 per output
    channel, or per tensor), each column's rounding error moved onto the
    columns not yet quantized through H^-1 (dampened by `damp` x mean diag).
    The layer keeps its float weight and gets the rounded one
    (`refold.rounded_weight`, dequantized values) and `refold.weight_scales`,
    which onnx-quant-qdq quantizes on; a layer it leaves float keeps its
    weight exactly. Memory: one H per group, whatever the number of sets.
  }];
  let options = [
    Option<"calibration", "calibration", "std::string", "\"\"",
           "Calibration data: a directory or a .npy of samples">,
    Option<"limit", "limit", "uint64_t", "64", "Use at most this many input sets">,
    Option<"perChannel", "per-channel", "bool", "true",
           "One scale per output channel (false: one per weight)">,
    Option<"damp", "damp", "double", "0.01",
           "Added to H's diagonal, relative to its mean">,
    Option<"maxColumns", "max-columns", "int64_t", "2304",
           "Largest K (input channels x taps) rounded this way">,
    Option<"progress", "progress", "bool", "false",
           "Say on stderr how long it took when over a second">
  ];
  let dependentDialects = ["::refold::ir::ONNXDialect"];
}

def QuantEstimate : Pass<"onnx-quant-estimate", "::mlir::ModuleOp"> {
  let summary = "Data-free ranges from the BatchNorm statistics kept with each op";
  let description = [{
    Records the same `refold.ranges` / `refold.input_ranges` (and
    `refold.means`, per channel) as onnx-quant-calibrate without running
    anything: an op carrying `refold.output_stats` (a folded BatchNorm's
    beta and |gamma|) has those per-channel moments; others get moments
    carried from their inputs (linear ops: means exactly, variances as if
    the inputs were independent; Relu, Clip, HardSwish, Sigmoid by the
    moments of a clipped Gaussian; Add, Mul by constants, Concat, pooling
    and reshaping ops). Graph inputs are taken as uniform over
    `input-range`. Each range is mean +- `sigmas` deviations over the
    channels, cut to what the ops bound. A value whose moments cannot be
    carried (an op with no rule) gets no range, so the QDQ rewrite leaves
    what reads it in float and says why.
  }];
  let options = [
    ListOption<"inputRange", "input-range", "double",
               "Range of the graph's float inputs: LO,HI (default -3,3)">,
    Option<"sigmas", "sigmas", "double", "6",
           "Standard deviations each side of the mean a range covers">
  ];
  let statistics = [Statistic<"numEstimated", "ranges", "values given a range">];
  let dependentDialects = ["::refold::ir::ONNXDialect"];
}

def QuantEqualize : Pass<"onnx-quant-equalize", "::mlir::func::FuncOp"> {
  let summary = "Cross-layer equalization of Conv -> (Relu) -> Conv pairs before quantization";
  let description = [{
    Data-free quantization's first step (Nagel et al. 2019): for a Conv whose
    output feeds another Conv (groups 1), directly or through a Relu, and
    nothing else, output channel c of the first is divided by
    s_c = sqrt(r1_c / r2_c) (weights and bias) and input channel c of the
    second multiplied by it, where r1_c and r2_c are the largest |weight| of
    the two channels. Exact in float (Relu(x / s) = Relu(x) / s for s > 0);
    it evens out the per-channel ranges one scale per tensor must cover (the
    outlier channels of merged RepVGG kernels). Relu6 and Clip are not
    exact under it and stop a pair. Repeats over all pairs until the scales
    settle (at most `max-rounds` rounds).
  }];
  let options = [
    Option<"maxRounds", "max-rounds", "unsigned", "20", "Most rounds over all pairs">
  ];
  let statistics = [Statistic<"numPairs", "pairs", "conv pairs equalized">];
  let dependentDialects = ["::refold::ir::ONNXDialect"];
}

def QuantEqualizeResidual : Pass<"onnx-quant-equalize-residual", "::mlir::ModuleOp"> {
  let summary = "Equalize the channels of residual streams from calibration data";
  let description = [{
    A residual network's stream (x, x + f(x), ... joined by Adds and Relus)
    is written by several convs and read by several, so no conv pair of
    onnx-quant-equalize covers it, and each of its tensors gets one int8
    scale for all channels. This pass finds each set of 4-D float tensors
    joined by Add and Relu (or Clip from 0 without upper bound) that holds
    an Add result, is written only by convs with constant weights of their
    own, Adds and Relus of the set, and read only by group-1 convs, Adds and
    Relus of the set (anything else - a graph input or output, a Concat, a
    Relu6, a depthwise reader - leaves the set alone). It runs the
    calibration sets through the interpreter, takes each channel's largest
    |x| over the set's tensors (range_c), and scales channel c by
    s_c = min((widest range / range_c)^`exponent`, `max-scale`) (the square
    root, the default, splits the gain between the stream's activation step
    and the readers' weight steps, as cross-layer equalization does): the writers' output
    channels (weights, bias, kept BatchNorm statistics) times s_c, the
    readers' input channels divided by it. Exact in float (Add and Relu
    commute with a positive per-channel scale); the readers' per-channel
    int8 weight scales absorb the inverse. Memory: one range per channel.
  }];
  let options = [
    Option<"calibration", "calibration", "std::string", "\"\"",
           "Calibration data: a directory or a .npy of samples">,
    Option<"limit", "limit", "uint64_t", "64", "Use at most this many input sets">,
    Option<"maxScale", "max-scale", "double", "16", "Largest scale given to one channel">,
    Option<"exponent", "exponent", "double", "0.5",
           "s_c = (widest range / range_c)^exponent: 0.5 splits the gain with the readers' "
           "weights, 1 gives every channel the widest range">
  ];
  let statistics = [Statistic<"numStreams", "streams", "residual streams equalized">];
  let dependentDialects = ["::refold::ir::ONNXDialect"];
}

def QuantSearchRanges : Pass<"onnx-quant-search-ranges", "::mlir::ModuleOp"> {
  let summary = "Choose activation ranges by the model's output SQNR";
  let description = [{
    A range method sees one tensor's histogram; what a range costs shows at
    the output, after every later rounding. This pass quantizes a copy of
    the calibrated model as onnx-quant-qdq would (same options), runs it on
    the first `sets` calibration sets and measures the mean output SQNR
    against float. Then, in graph order, each activation tensor the rewrite
    quantizes gets its recorded range (`refold.ranges`) scaled by 0.8, 0.9,
    1.1 and 1.25 in turn; a factor is kept when it raises that SQNR by more
    than 0.005 dB. Trials stop before they pass `budget-gmacs` billion
    multiply-accumulates (a trial costs the model's MACs times `sets`), so
    the result does not depend on the machine; tensors past that point keep
    the range method's choice. The model itself is not changed, only the
    recorded ranges. Memory: the float outputs of the sets.
  }];
  let options = [
    Option<"calibration", "calibration", "std::string", "\"\"",
           "Calibration data: a directory or a .npy of samples">,
    Option<"limit", "limit", "uint64_t", "0", "Use at most this many input sets (0: all)">,
    Option<"sets", "sets", "uint64_t", "64", "Input sets each trial runs">,
    Option<"budgetGmacs", "budget-gmacs", "double", "250",
           "Stop trying ranges before this many billion multiply-accumulates">,
    Option<"activations", "activations", "std::string", "\"uint8\"",
           "Activation type of the rewrite: uint8 or int8">,
    Option<"weights", "weights", "std::string", "\"per-channel\"",
           "Weight scales of the rewrite: per-channel or per-tensor">,
    ListOption<"keepFloat", "keep-float", "std::string",
               "Nodes the rewrite leaves in float, by node name or output name">,
    Option<"biasCorrection", "bias-correction", "bool", "true",
           "Bias correction in the rewrite">,
    Option<"progress", "progress", "bool", "false",
           "Say on stderr how far it got when over a second">
  ];
  let statistics = [Statistic<"numSearched", "searched", "tensors whose range was searched">,
                    Statistic<"numChanged", "changed", "ranges changed">];
}

def QuantizeQDQ : Pass<"onnx-quant-qdq", "::mlir::func::FuncOp"> {
  let summary = "Quantize Conv, Gemm and MatMul to int8 in QDQ form from recorded ranges";
  let description = [{
    Each Conv, Gemm and MatMul with a constant float32 weight whose input and
    output have recorded ranges (onnx-quant-calibrate) runs on quantized
    tensors: its activation input and its output pass through one
    QuantizeLinear/DequantizeLinear pair per tensor (asymmetric, per tensor,
    uint8 or int8), shared by all consumers; the weight becomes an int8
    initializer (symmetric, per output channel or per tensor) feeding a
    DequantizeLinear, and a 1-D bias an int32 initializer with scale input
    scale x weight scale. A Relu, or a Clip from 0, that is the output's only
    user is absorbed into the output's range (the quantized range starts at
    0, so saturation does the clamping) and removed. An Add whose two inputs
    are both dequantized tensors gets a quantized output as well (with its
    Relu absorbed the same way), so that it runs as an integer add
    (onnxruntime's QLinearAdd). Refused, with the reason
    left in `refold.quant_skipped`: a weight computed at run time, a missing
    range, a bias that is not a 1-D constant, a node named in `keep-float`.
  }];
  let options = [
    Option<"activations", "activations", "std::string", "\"uint8\"",
           "Activation type: uint8 or int8">,
    Option<"weights", "weights", "std::string", "\"per-channel\"",
           "Weight scales: per-channel or per-tensor">,
    ListOption<"keepFloat", "keep-float", "std::string",
               "Nodes to leave in float, by node name or output name">,
    Option<"biasCorrection", "bias-correction", "bool", "true",
           "Subtract the mean shift of the int8 weight, (Wq - W) E[x], from the bias "
           "where the input's channel means are recorded (refold.means)">
  ];
  let statistics = [Statistic<"numQuantized", "quantized", "ops quantized">,
                    Statistic<"numBiasCorrected", "bias-corrected", "biases corrected">,
                    Statistic<"numAdds", "adds", "Adds of quantized tensors quantized">];
  let dependentDialects = ["::refold::ir::ONNXDialect"];
}

def TestBreakRewrite : Pass<"test-break-rewrite", "::mlir::func::FuncOp"> {
  let summary = "Test only: perturb one float weight, a wrong rewrite --verify must catch";
  let description = [{
    Replaces the first float32 initializer that has users by a copy scaled
    by 1.01. Used by the tests of `refold --verify`; never part of a pipeline.
  }];
  let dependentDialects = ["::refold::ir::ONNXDialect"];
}

#endif // REFOLD_PASSES_TD
