//===- Calibration.cpp - calibration data and value ranges -------------------===//
//
// Input sets are read one at a time and dropped after their run; ranges
// are two floats per value and histograms a fixed number of bins, so
// calibrating on 1,000 sets needs no more memory than on 10.
//
//===----------------------------------------------------------------------===//

#include "refold/Quantizer/Quantizer.h"

#include "refold/Dialect/ONNX/ONNXOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>

using namespace mlir;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;

namespace refold::quant {

static Error error(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

static func::FuncOp mainGraph(ModuleOp module) {
  func::FuncOp main;
  for (auto func : module.getOps<func::FuncOp>())
    main = func;
  return main;
}

/// Sorted entries of `dir` whose names satisfy `keep`.
static std::vector<std::string> listDir(StringRef dir, llvm::function_ref<bool(StringRef)> keep) {
  std::vector<std::string> found;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; it != end && !ec; it.increment(ec))
    if (keep(llvm::sys::path::filename(it->path())))
      found.push_back(it->path());
  std::sort(found.begin(), found.end());
  return found;
}

Expected<CalibrationData> CalibrationData::open(StringRef path, ModuleOp module, size_t limit) {
  CalibrationData data;
  data.path = path.str();
  data.inputNames = interp::graphInputNames(module);
  if (data.inputNames.empty())
    return error("the model has no inputs to calibrate");
  if (!llvm::sys::fs::exists(path))
    return error("calibration data '" + path + "' does not exist");
  if (!llvm::sys::fs::is_directory(path)) {
    if (!path.ends_with(".npy"))
      return error("calibration data '" + path +
                   "': expected a directory or a .npy file of samples");
    if (data.inputNames.size() != 1)
      return error("calibration data '" + path + "': one .npy of samples fits a single-input "
                   "model; this one has " + std::to_string(data.inputNames.size()) +
                   " inputs (give a directory of NAME.npy files)");
    // Only the header: samples are read one at a time.
    std::string head(65536, '\0');
    {
      std::ifstream in(path.str(), std::ios::binary);
      if (!in)
        return error("calibration data '" + path + "': cannot read");
      in.read(head.data(), head.size());
      head.resize(in.gcount());
    }
    auto header = interp::parseNpyHeader(head, path);
    if (!header)
      return header.takeError();
    if (header->shape.empty() || header->shape[0] < 1)
      return error("calibration data '" + path + "' holds no samples");
    uint64_t fileSize = 0;
    llvm::sys::fs::file_size(path, fileSize);
    uint64_t expected = header->dataOffset;
    uint64_t elements = 1;
    for (int64_t d : header->shape)
      elements *= uint64_t(d);
    expected += elements * interp::dtypeSize(header->dtype);
    if (fileSize != expected)
      return error("calibration data '" + path + "': the data does not match its shape");
    data.layout = Layout::Batched;
    data.batch = *header;
    data.count = header->shape[0];
  } else {
    data.setDirs = listDir(path, [](StringRef name) { return name.starts_with("test_data_set_"); });
    if (!data.setDirs.empty()) {
      data.layout = Layout::TestData;
      data.count = data.setDirs.size();
    } else {
      for (const std::string &name : data.inputNames)
        if (!llvm::sys::fs::exists(llvm::Twine(path) + "/" + name + ".npy"))
          return error("calibration data '" + path + "': no " + name +
                       ".npy (one file per model input) and no test_data_set_* directories");
      data.layout = Layout::NamedNpy;
      data.count = 1;
    }
  }
  if (limit)
    data.count = std::min(data.count, limit);
  return data;
}

std::string CalibrationData::describe() const {
  std::string what = std::to_string(count) + (count == 1 ? " input set" : " input sets");
  return what + " from " + path;
}

Error CalibrationData::runEach(ModuleOp module, const interp::RunOptions &options, size_t sets,
                               StringRef what, function_ref<void(size_t)> afterEach) const {
  for (size_t i = 0; i < std::min(sets, count); ++i) {
    auto inputs = load(i);
    if (!inputs)
      return inputs.takeError();
    auto outputs = interp::run(module, *inputs, options);
    if (!outputs)
      return error(what + " set " + std::to_string(i) + ": " +
                   llvm::toString(outputs.takeError()));
    if (afterEach)
      afterEach(i);
  }
  return Error::success();
}

Expected<interp::TensorMap> CalibrationData::load(size_t i) const {
  interp::TensorMap sets;
  switch (layout) {
  case Layout::NamedNpy:
    for (const std::string &name : inputNames) {
      auto t = interp::readTensorFile(path + "/" + name + ".npy");
      if (!t)
        return t.takeError();
      sets[name] = *t;
    }
    break;
  case Layout::TestData: {
    auto files = listDir(setDirs[i], [](StringRef name) {
      return name.starts_with("input_") && name.ends_with(".pb");
    });
    if (files.size() != inputNames.size())
      return error(setDirs[i] + ": " + std::to_string(files.size()) + " input_*.pb files for " +
                   std::to_string(inputNames.size()) + " model inputs");
    // input_<k>.pb is the k-th input; sort by the number, not the text.
    auto number = [](const std::string &f) {
      StringRef stem = llvm::sys::path::stem(f);
      unsigned k = 0;
      stem.drop_front(6).getAsInteger(10, k);
      return k;
    };
    std::sort(files.begin(), files.end(),
              [&](const std::string &a, const std::string &b) { return number(a) < number(b); });
    for (auto [name, file] : llvm::zip(inputNames, files)) {
      auto t = interp::readTensorFile(file);
      if (!t)
        return t.takeError();
      sets[name] = *t;
    }
    break;
  }
  case Layout::Batched: {
    // Sample i as a batch of one: the rank the model's input expects.
    llvm::SmallVector<int64_t> shape(batch.shape.begin(), batch.shape.end());
    shape[0] = 1;
    interp::Tensor sample(batch.dtype, shape);
    std::ifstream in(path, std::ios::binary);
    in.seekg(std::streamoff(batch.dataOffset + i * sample.byteSize()));
    in.read(sample.raw(), std::streamsize(sample.byteSize()));
    if (!in)
      return error("calibration data '" + path + "': cannot read sample " + std::to_string(i));
    sets[inputNames[0]] = sample;
    break;
  }
  }
  return sets;
}

void Range::add(const interp::Tensor &t) {
  if (t.dtype() != interp::DType::F32)
    return;
  const float *p = t.data<float>();
  for (int64_t i = 0, n = t.size(); i < n; ++i) {
    if (!std::isfinite(p[i]))
      continue;
    min = std::min(min, p[i]);
    max = std::max(max, p[i]);
  }
}

namespace {
/// Running per-channel sums (axis 1) of a value.
struct ChannelSums {
  std::vector<double> sum;
  double count = 0; // elements per channel seen
  void add(const interp::Tensor &t) {
    if (t.rank() < 2 || t.shape()[1] <= 0)
      return;
    int64_t channels = t.shape()[1], outer = t.shape()[0], inner = 1;
    for (int64_t d = 2; d < t.rank(); ++d)
      inner *= t.shape()[d];
    if (sum.empty())
      sum.assign(channels, 0);
    if (int64_t(sum.size()) != channels)
      return;
    const float *p = t.data<float>();
    for (int64_t n = 0; n < outer; ++n)
      for (int64_t c = 0; c < channels; ++c) {
        double s = 0;
        const float *row = p + (n * channels + c) * inner;
        for (int64_t i = 0; i < inner; ++i)
          s += std::isfinite(row[i]) ? row[i] : 0.0f;
        sum[c] += s;
      }
    count += double(outer * inner);
  }
};
} // namespace

Expected<Calibrated> collectRanges(ModuleOp module, const CalibrationData &data,
                                   const RangeOptions &rangeOptions, bool progress) {
  Calibrated result;
  llvm::DenseMap<Value, Histogram> histograms;
  llvm::DenseMap<Value, ChannelSums> sums;
  bool wantHistograms = rangeOptions.method != RangeMethod::MinMax;
  interp::RunOptions options;
  options.observe = [&](Value value, const interp::Tensor &t) {
    if (t.dtype() != interp::DType::F32)
      return;
    result.ranges[value].add(t);
    sums[value].add(t);
    if (wantHistograms)
      histograms[value].add(t);
  };
  auto start = std::chrono::steady_clock::now();
  bool reported = false;
  if (Error e = data.runEach(module, options, data.size(), "calibration", [&](size_t i) {
        double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (progress && (seconds > 1 || reported) &&
            (i + 1 == data.size() || (i + 1) % 10 == 0)) {
          llvm::errs() << llvm::format("refold: calibrating: %zu/%zu input sets, %.1f s\n", i + 1,
                                       data.size(), seconds);
          reported = true;
        }
      }))
    return e;
  if (wantHistograms)
    for (auto &[value, range] : result.ranges)
      range = chooseRange(range, histograms[value], rangeOptions);
  for (auto &[value, s] : sums) {
    if (s.sum.empty() || s.count == 0)
      continue;
    std::vector<float> means(s.sum.size());
    for (size_t c = 0; c < means.size(); ++c)
      means[c] = float(s.sum[c] / s.count);
    result.means[value] = std::move(means);
  }
  return result;
}

static Attribute rangeAttr(Builder &b, const Range *range) {
  if (!range || !range->valid())
    return b.getDenseF32ArrayAttr({});
  return b.getDenseF32ArrayAttr({range->min, range->max});
}

void attachRanges(ModuleOp module, const llvm::DenseMap<Value, Range> &ranges) {
  func::FuncOp main = mainGraph(module);
  if (!main)
    return;
  Builder b(module.getContext());
  auto lookup = [&](Value v) -> const Range * {
    auto it = ranges.find(v);
    return it == ranges.end() ? nullptr : &it->second;
  };
  SmallVector<Attribute> inputs;
  for (Value arg : main.getBody().front().getArguments())
    inputs.push_back(rangeAttr(b, lookup(arg)));
  main->setAttr(kInputRangesAttr, b.getArrayAttr(inputs));
  main.walk([&](Operation *op) {
    if (op->getNumResults() == 0 || isa<ir::InitializerOp, ir::ConstantOp>(op))
      return;
    SmallVector<Attribute> perResult;
    bool any = false;
    for (Value r : op->getResults()) {
      const Range *range = lookup(r);
      any |= range && range->valid();
      perResult.push_back(rangeAttr(b, range));
    }
    if (any)
      op->setAttr(kRangesAttr, b.getArrayAttr(perResult));
    else
      op->removeAttr(kRangesAttr);
  });
}

/// The per-value record of `value`: entry `i` of `inputAttr` on the graph
/// for its i-th input, of `opAttr` on the producer for its i-th result.
static DenseF32ArrayAttr recordOf(Value value, StringRef inputAttr, StringRef opAttr) {
  ArrayAttr records;
  unsigned index = 0;
  if (auto arg = dyn_cast<BlockArgument>(value)) {
    records = arg.getOwner()->getParentOp()->getAttrOfType<ArrayAttr>(inputAttr);
    index = arg.getArgNumber();
  } else if (Operation *def = value.getDefiningOp()) {
    records = def->getAttrOfType<ArrayAttr>(opAttr);
    index = cast<OpResult>(value).getResultNumber();
  }
  if (!records || index >= records.size())
    return {};
  return dyn_cast<DenseF32ArrayAttr>(records[index]);
}

std::optional<Range> rangeOf(Value value) {
  auto pair = recordOf(value, kInputRangesAttr, kRangesAttr);
  if (!pair || pair.size() != 2)
    return std::nullopt;
  Range r;
  r.min = pair[0];
  r.max = pair[1];
  return r.valid() ? std::optional<Range>(r) : std::nullopt;
}

void setRangeOf(Value value, const Range &range) {
  Builder b(value.getContext());
  Operation *holder;
  StringRef attrName;
  unsigned index, count;
  if (auto arg = dyn_cast<BlockArgument>(value)) {
    holder = arg.getOwner()->getParentOp();
    attrName = kInputRangesAttr;
    index = arg.getArgNumber();
    count = arg.getOwner()->getNumArguments();
  } else {
    holder = value.getDefiningOp();
    attrName = kRangesAttr;
    index = cast<OpResult>(value).getResultNumber();
    count = holder->getNumResults();
  }
  SmallVector<Attribute> records(count, b.getDenseF32ArrayAttr({}));
  if (auto old = holder->getAttrOfType<ArrayAttr>(attrName))
    for (unsigned i = 0; i < std::min<unsigned>(count, old.size()); ++i)
      records[i] = old[i];
  records[index] = rangeAttr(b, &range);
  holder->setAttr(attrName, b.getArrayAttr(records));
}

void attachMeans(ModuleOp module, const ChannelMeans &means) {
  func::FuncOp main = mainGraph(module);
  if (!main)
    return;
  Builder b(module.getContext());
  auto record = [&](Value v) -> Attribute {
    auto it = means.find(v);
    return b.getDenseF32ArrayAttr(it == means.end() ? llvm::ArrayRef<float>()
                                                    : llvm::ArrayRef<float>(it->second));
  };
  SmallVector<Attribute> inputs;
  for (Value arg : main.getBody().front().getArguments())
    inputs.push_back(record(arg));
  main->setAttr(kInputMeansAttr, b.getArrayAttr(inputs));
  main.walk([&](Operation *op) {
    if (op->getNumResults() == 0 || isa<ir::InitializerOp, ir::ConstantOp>(op))
      return;
    SmallVector<Attribute> perResult;
    bool any = false;
    for (Value r : op->getResults()) {
      any |= means.count(r) > 0;
      perResult.push_back(record(r));
    }
    if (any)
      op->setAttr(kMeansAttr, b.getArrayAttr(perResult));
    else
      op->removeAttr(kMeansAttr);
  });
}

std::optional<std::vector<float>> meansOf(Value value) {
  auto means = recordOf(value, kInputMeansAttr, kMeansAttr);
  if (!means || means.empty())
    return std::nullopt;
  return std::vector<float>(means.asArrayRef().begin(), means.asArrayRef().end());
}

} // namespace refold::quant
