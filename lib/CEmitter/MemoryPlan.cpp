//===- MemoryPlan.cpp - arena offsets from tensor lifetimes ----------------===//

#include "MemoryPlan.h"

#include <algorithm>
#include <map>
#include <numeric>

namespace refold::cemit {

static uint64_t alignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

uint64_t planArena(std::vector<PlannedBuffer> &buffers, uint64_t alignment) {
  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return buffers[a].bytes > buffers[b].bytes; });
  std::vector<size_t> placed;
  uint64_t arena = 0;
  for (size_t index : order) {
    PlannedBuffer &buffer = buffers[index];
    // Address ranges of placed buffers alive at the same time, by offset.
    std::vector<std::pair<uint64_t, uint64_t>> busy;
    for (size_t other : placed) {
      const PlannedBuffer &o = buffers[other];
      if (o.first <= buffer.last && buffer.first <= o.last)
        busy.push_back({o.offset, o.offset + o.bytes});
    }
    std::sort(busy.begin(), busy.end());
    uint64_t offset = 0;
    for (auto [begin, end] : busy) {
      if (offset + buffer.bytes <= begin)
        break;
      offset = std::max(offset, alignUp(end, alignment));
    }
    buffer.offset = offset;
    arena = std::max(arena, offset + buffer.bytes);
    placed.push_back(index);
  }
  return alignUp(arena, alignment);
}

uint64_t liveLowerBound(const std::vector<PlannedBuffer> &buffers) {
  std::map<unsigned, int64_t> delta;
  for (const PlannedBuffer &b : buffers) {
    delta[b.first] += int64_t(b.bytes);
    delta[b.last + 1] -= int64_t(b.bytes);
  }
  int64_t live = 0, most = 0;
  for (auto &[step, d] : delta) {
    live += d;
    most = std::max(most, live);
  }
  return uint64_t(most);
}

} // namespace refold::cemit
