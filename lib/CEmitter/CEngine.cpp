//===- CEngine.cpp - write, compile and run emitted C ------------------------===//

#include "refold/CEmitter/CEngine.h"

#include "refold/Dialect/ONNX/ONNXOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using llvm::Error;
using llvm::StringRef;

namespace refold::cemit {

static Error error(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message.str());
}

llvm::Expected<EmittedC> emitForC(ModuleOp module, StringRef prefix, StringRef headerName,
                                         const llvm::StringMap<int64_t> &dims, bool fixedRequant) {
  OwningOpRef<ModuleOp> copy = module.clone();
  if (auto err = pinDimensions(*copy, dims))
    return std::move(err);
  EmitOptions options;
  options.prefix = prefix.str();
  options.headerName = headerName.str();
  options.fixedRequant = fixedRequant;
  return emitC(*copy, options);
}

llvm::Expected<ArenaReport> writeC(ModuleOp module, StringRef cPath, StringRef prefix,
                                          const llvm::StringMap<int64_t> &dims, bool fixedRequant) {
  SmallString<256> headerPath(cPath);
  llvm::sys::path::replace_extension(headerPath, "h");
  auto emitted =
      emitForC(module, prefix, llvm::sys::path::filename(headerPath), dims, fixedRequant);
  if (!emitted)
    return emitted.takeError();
  // Both files or neither: each is written to a temporary and renamed.
  if (auto err = llvm::writeToOutput(headerPath, [&](llvm::raw_ostream &os) {
        os << emitted->header;
        return Error::success();
      }))
    return std::move(err);
  if (auto err = llvm::writeToOutput(cPath, [&](llvm::raw_ostream &os) {
        os << emitted->source;
        return Error::success();
      })) {
    llvm::sys::fs::remove(headerPath);
    return std::move(err);
  }
  return emitted->report;
}

/// A main() that reads raw inputs, runs the model through both entry points
/// (the workspace one on a workspace full of garbage), checks they agree,
/// times `runs` runs and writes raw outputs.
static std::string harnessSource(StringRef prefix, ArrayRef<uint64_t> inBytes,
                                 ArrayRef<uint64_t> outBytes) {
  std::string s;
  llvm::raw_string_ostream os(s);
  auto list = [](ArrayRef<uint64_t> v) {
    std::string t;
    for (auto [i, x] : llvm::enumerate(v))
      t += (i ? ", " : "") + std::to_string(x);
    return t.empty() ? std::string("0") : t;
  };
  os << "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <time.h>\n"
     << "#include \"model.h\"\n"
     << "#define NIN " << inBytes.size() << "\n#define NOUT " << outBytes.size() << "\n"
     << "static const size_t in_bytes[] = {" << list(inBytes) << "};\n"
     << "static const size_t out_bytes[] = {" << list(outBytes) << "};\n"
     << "static int cmp(const void *a, const void *b) {\n"
     << "  double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y);\n}\n"
     << "int main(int argc, char **argv) {\n"
     << "  void *in[NIN + 1], *out[NOUT + 1], *again[NOUT + 1];\n"
     << "  unsigned char *raw, *ws;\n  long runs, r;\n  double *times;\n  int i;\n"
     << "  if (argc != 2 + NIN + NOUT) return 2;\n"
     << "  for (i = 0; i < NIN; ++i) {\n"
     << "    FILE *f = fopen(argv[1 + i], \"rb\");\n"
     << "    in[i] = malloc(in_bytes[i] + 1);\n"
     << "    if (!f || fread(in[i], 1, in_bytes[i], f) != in_bytes[i]) return 3;\n"
     << "    fclose(f);\n  }\n"
     << "  for (i = 0; i < NOUT; ++i) { out[i] = malloc(out_bytes[i] + 1); again[i] = malloc(out_bytes[i] + 1); }\n"
     << "  raw = (unsigned char *)malloc(" << prefix << "_WORKSPACE_SIZE + 64);\n"
     << "  ws = raw + (64 - (size_t)raw % 64) % 64;\n"
     << "  memset(ws, 0xA5, " << prefix << "_WORKSPACE_SIZE);\n"
     << "  if (" << prefix << "_run_with_workspace((const void *const *)in, again, ws) != 0) return 4;\n"
     << "  runs = atol(argv[1 + NIN + NOUT]);\n  if (runs < 1) runs = 1;\n"
     << "  times = (double *)malloc(sizeof(double) * (size_t)runs);\n"
     << "  for (r = 0; r < runs; ++r) {\n"
     << "    clock_t t0 = clock();\n"
     << "    if (" << prefix << "_run((const void *const *)in, out) != 0) return 4;\n"
     << "    times[r] = (double)(clock() - t0) * 1000.0 / CLOCKS_PER_SEC;\n  }\n"
     << "  qsort(times, (size_t)runs, sizeof(double), cmp);\n"
     << "  if (runs > 1) printf(\"median %.4f ms\\n\", times[runs / 2]);\n"
     << "  for (i = 0; i < NOUT; ++i) {\n"
     << "    FILE *f;\n"
     << "    if (memcmp(out[i], again[i], out_bytes[i]) != 0) { fprintf(stderr, \"output %d differs between "
     << prefix << "_run and " << prefix << "_run_with_workspace\\n\", i); return 5; }\n"
     << "    f = fopen(argv[1 + NIN + i], \"wb\");\n"
     << "    if (!f || fwrite(out[i], 1, out_bytes[i], f) != out_bytes[i]) return 6;\n"
     << "    fclose(f);\n  }\n"
     << "  for (i = 0; i < NIN; ++i) free(in[i]);\n"
     << "  for (i = 0; i < NOUT; ++i) { free(out[i]); free(again[i]); }\n"
     << "  free(raw);\n  free(times);\n  return 0;\n}\n";
  return s;
}

static Error writeFile(StringRef path, StringRef data) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_None);
  if (ec)
    return error(path + ": " + ec.message());
  os << data;
  return Error::success();
}

static std::vector<std::string> splitFlags(StringRef flags) {
  std::vector<std::string> out;
  SmallVector<StringRef> parts;
  flags.split(parts, ' ', -1, false);
  for (StringRef p : parts)
    out.push_back(p.str());
  return out;
}

llvm::Expected<interp::TensorMap> runC(ModuleOp module, ArrayRef<interp::Tensor> inputs,
                                       const COptions &options, double *medianMs) {
  func::FuncOp main;
  for (auto f : module.getOps<func::FuncOp>())
    main = f;
  if (!main || main.isExternal())
    return error("the module has no main graph");
  // The inputs' shapes pin the symbolic dimensions.
  llvm::StringMap<int64_t> dims;
  auto graph = main->getAttrOfType<DictionaryAttr>(ir::kGraphAttr);
  ArrayAttr inputRecords = graph ? graph.getAs<ArrayAttr>("inputs") : ArrayAttr();
  ArrayAttr outputRecords = graph ? graph.getAs<ArrayAttr>("outputs") : ArrayAttr();
  for (auto [i, t] : llvm::enumerate(inputs)) {
    auto record = inputRecords && i < inputRecords.size()
                      ? dyn_cast<DictionaryAttr>(inputRecords[i]) : DictionaryAttr();
    auto params = record ? record.getAs<ArrayAttr>("dim_params") : ArrayAttr();
    for (size_t d = 0; params && d < params.size() && int64_t(d) < t.rank(); ++d)
      if (auto p = dyn_cast<StringAttr>(params[d]); p && !p.empty())
        dims[p.getValue()] = t.dim(d);
  }
  auto emitted = emitForC(module, "model", "model.h", dims, options.fixedRequant);
  if (!emitted)
    return emitted.takeError();

  SmallString<128> dir;
  if (auto ec = llvm::sys::fs::createUniqueDirectory("refold-c", dir))
    return error("cannot create a temporary directory: " + ec.message());
  struct Cleanup {
    SmallString<128> dir;
    ~Cleanup() { llvm::sys::fs::remove_directories(dir); }
  } cleanup{dir};
  auto at = [&](StringRef name) { return (dir + "/" + name).str(); };

  std::vector<uint64_t> inBytes, outBytes;
  for (const auto &t : inputs)
    inBytes.push_back(t.byteSize());
  Block &body = main.getBody().front();
  // Output types after pinning come from the emitted copy; recompute here.
  OwningOpRef<ModuleOp> pinned = module.clone();
  if (auto err = pinDimensions(*pinned, dims))
    return std::move(err);
  func::FuncOp pinnedMain;
  for (auto f : pinned->getOps<func::FuncOp>())
    pinnedMain = f;
  std::vector<std::pair<interp::DType, std::vector<int64_t>>> outTypes;
  for (Value v : pinnedMain.getBody().front().getTerminator()->getOperands()) {
    auto type = cast<RankedTensorType>(v.getType());
    auto dtype = interp::dtypeFromMLIR(type.getElementType());
    outTypes.push_back({*dtype, std::vector<int64_t>(type.getShape().begin(), type.getShape().end())});
    outBytes.push_back(type.getNumElements() * interp::dtypeSize(*dtype));
  }
  (void)body;
  if (auto err = writeFile(at("model.c"), emitted->source))
    return std::move(err);
  if (auto err = writeFile(at("model.h"), emitted->header))
    return std::move(err);
  if (auto err = writeFile(at("main.c"), harnessSource("model", inBytes, outBytes)))
    return std::move(err);
  for (auto [i, t] : llvm::enumerate(inputs))
    if (auto err = writeFile(at("in" + std::to_string(i) + ".bin"),
                             StringRef(t.raw(), t.byteSize())))
      return std::move(err);

  std::string cc = options.cc;
  if (cc.empty())
    if (const char *env = getenv("CC"))
      cc = env;
  if (cc.empty())
    cc = "cc";
  auto program = llvm::sys::findProgramByName(cc);
  if (!program)
    return error("C compiler '" + cc + "' not found (--cc)");
  std::vector<std::string> args = {*program, "-std=c99"};
  for (auto &f : splitFlags(options.cflags))
    args.push_back(f);
  args.insert(args.end(), {"-o", at("model.exe"), at("model.c"), at("main.c"), "-lm"});
  std::vector<StringRef> argRefs(args.begin(), args.end());
  std::string compileLog = at("cc.log");
  std::optional<StringRef> redirects[] = {std::nullopt, StringRef(compileLog), StringRef(compileLog)};
  std::string message;
  int status = llvm::sys::ExecuteAndWait(*program, argRefs, std::nullopt, redirects, 0, 0, &message);
  if (status != 0) {
    std::string log;
    if (auto buffer = llvm::MemoryBuffer::getFile(compileLog))
      log = (*buffer)->getBuffer().str();
    StringRef first = StringRef(log).trim();
    // The first diagnostic line names the problem.
    SmallVector<StringRef> lines;
    first.split(lines, '\n');
    for (StringRef line : lines)
      if (line.contains("error")) {
        first = line;
        break;
      }
    return error("the C compiler failed (" + cc + "): " + first.split('\n').first);
  }

  std::vector<std::string> runArgs = splitFlags(options.runUnder);
  runArgs.push_back(at("model.exe"));
  for (size_t i = 0; i < inputs.size(); ++i)
    runArgs.push_back(at("in" + std::to_string(i) + ".bin"));
  for (size_t i = 0; i < outBytes.size(); ++i)
    runArgs.push_back(at("out" + std::to_string(i) + ".bin"));
  runArgs.push_back(std::to_string(std::max(1u, options.timeRuns)));
  std::vector<StringRef> runRefs(runArgs.begin(), runArgs.end());
  std::string runLog = at("run.log");
  std::optional<StringRef> runRedirects[] = {std::nullopt, StringRef(runLog), StringRef(runLog)};
  std::string exe = at("model.exe");
  if (!options.runUnder.empty()) {
    auto wrapper = llvm::sys::findProgramByName(runArgs[0]);
    if (!wrapper)
      return error("'" + runArgs[0] + "' not found (--run-under)");
    exe = *wrapper;
  }
  status = llvm::sys::ExecuteAndWait(exe, runRefs, std::nullopt, runRedirects, 0, 0, &message);
  std::string log;
  if (auto buffer = llvm::MemoryBuffer::getFile(runLog))
    log = (*buffer)->getBuffer().str();
  if (status != 0) {
    // The first line that says something (a sanitizer opens with a rule).
    SmallVector<StringRef> lines;
    StringRef(log).split(lines, '\n', -1, false);
    StringRef first;
    for (StringRef line : lines)
      if (line.find_first_not_of("= \t\r") != StringRef::npos) {
        first = line.trim();
        break;
      }
    return error("the compiled model failed (exit " + std::to_string(status) + ")" +
                 (first.empty() ? "" : ": " + first.str()));
  }
  if (medianMs) {
    *medianMs = -1;
    StringRef l(log);
    if (l.consume_front("median "))
      l.split(' ').first.getAsDouble(*medianMs);
  }
  interp::TensorMap outputs;
  for (auto [i, type] : llvm::enumerate(outTypes)) {
    auto buffer = llvm::MemoryBuffer::getFile(at("out" + std::to_string(i) + ".bin"));
    if (!buffer || (*buffer)->getBufferSize() != outBytes[i])
      return error("the compiled model wrote no output " + std::to_string(i));
    interp::Tensor t(type.first, type.second);
    std::memcpy(t.raw(), (*buffer)->getBufferStart(), outBytes[i]);
    auto record = outputRecords && i < outputRecords.size()
                      ? dyn_cast<DictionaryAttr>(outputRecords[i]) : DictionaryAttr();
    auto name = record ? record.getAs<StringAttr>("name") : StringAttr();
    outputs[name ? name.str() : "output" + std::to_string(i)] = t;
  }
  return outputs;
}

} // namespace refold::cemit
