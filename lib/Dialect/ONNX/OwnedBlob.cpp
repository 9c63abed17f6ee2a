//===- OwnedBlob.cpp - weight bytes the exporter can take back -------------===//

#include "refold/Dialect/ONNX/OwnedBlob.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinDialect.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringSet.h"

#include <memory>
#include <mutex>

using namespace mlir;

namespace {
/// The strings behind owned blobs, by data address. Blobs are made and
/// dropped by one compile at a time, but the library may run several.
struct Registry {
  std::mutex mutex;
  llvm::DenseMap<const void *, std::string *> strings;
};

Registry &registry() {
  static Registry *instance = new Registry();
  return *instance;
}
} // namespace

AsmResourceBlob refold::ir::makeOwnedBlob(std::string bytes, size_t alignment) {
  auto owned = std::make_unique<std::string>(std::move(bytes));
  const void *data = owned->data();
  {
    Registry &r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    r.strings[data] = owned.get();
  }
  // Heap strings are aligned for any scalar; the alignment recorded (and
  // printed with the resource) is the element's.
  if (alignment == 0 || reinterpret_cast<uintptr_t>(data) % alignment != 0)
    alignment = 1;
  ArrayRef<char> view(owned->data(), owned->size());
  return AsmResourceBlob(
      view, alignment,
      [owned = std::move(owned), data](void *, size_t, size_t) mutable {
        Registry &r = registry();
        {
          std::lock_guard<std::mutex> lock(r.mutex);
          auto it = r.strings.find(data);
          if (it != r.strings.end() && it->second == owned.get())
            r.strings.erase(it);
        }
        owned.reset();
      },
      /*dataIsMutable=*/true);
}

bool refold::ir::takeOwnedBytes(const AsmResourceBlob &blob, std::string &out) {
  ArrayRef<char> data = blob.getData();
  Registry &r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.strings.find(data.data());
  if (it == r.strings.end() || it->second->size() != data.size())
    return false;
  out.swap(*it->second);
  r.strings.erase(it);
  return true;
}

namespace {
/// The resources createWeightAttr made, per context, by key (looked up again
/// when released, so a key of a context that is gone is harmless).
struct WeightKeys {
  std::mutex mutex;
  llvm::DenseMap<MLIRContext *, llvm::StringSet<>> keys;
};
WeightKeys &weightKeys() {
  static WeightKeys *instance = new WeightKeys();
  return *instance;
}
} // namespace

DenseResourceElementsAttr refold::ir::createWeightAttr(ShapedType type, StringRef key,
                                                       std::string bytes) {
  Type element = type.getElementType();
  unsigned bits = 8;
  if (auto complex = dyn_cast<ComplexType>(element))
    bits = 2 * complex.getElementType().getIntOrFloatBitWidth();
  else if (element.isIntOrIndexOrFloat())
    bits = element.isIndex() ? 64 : element.getIntOrFloatBitWidth();
  size_t alignment = std::min<size_t>(std::max<size_t>(bits / 8, 1), alignof(std::max_align_t));
  auto attr =
      DenseResourceElementsAttr::get(type, key, makeOwnedBlob(std::move(bytes), alignment));
  WeightKeys &w = weightKeys();
  std::lock_guard<std::mutex> lock(w.mutex);
  w.keys[type.getContext()].insert(attr.getRawHandle().getKey());
  return attr;
}

uint64_t refold::ir::releaseUnusedBlobs(MLIRContext *context, ArrayRef<Operation *> roots) {
  llvm::StringSet<> used;
  for (Operation *root : roots)
    root->walk([&](Operation *op) {
      for (NamedAttribute attr : op->getAttrs())
        attr.getValue().walk([&](DenseResourceElementsAttr resource) {
          used.insert(resource.getRawHandle().getKey());
        });
    });
  auto &blobs = DenseResourceElementsHandle::getManagerInterface(context).getBlobManager();
  WeightKeys &w = weightKeys();
  std::lock_guard<std::mutex> lock(w.mutex);
  llvm::StringSet<> &keys = w.keys[context];
  uint64_t freed = 0;
  llvm::SmallVector<std::string> released;
  for (const auto &key : keys) {
    if (used.contains(key.first()))
      continue;
    released.push_back(key.first().str());
    auto *entry = blobs.lookup(key.first());
    if (!entry || !entry->getBlob())
      continue;
    freed += entry->getBlob()->getData().size();
    entry->setBlob(AsmResourceBlob());
  }
  for (const std::string &key : released)
    keys.erase(key);
  return freed;
}
