//===- MemoryPlan.cpp - arena offsets from tensor lifetimes ----------------===//

#include "MemoryPlan.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <functional>
#include <map>
#include <numeric>

namespace refold::cemit {

static uint64_t alignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/// Places buffers in `order`, each at the lowest offset free during its life.
static uint64_t placeInOrder(std::vector<PlannedBuffer> &buffers, const std::vector<size_t> &order,
                             uint64_t alignment) {
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

uint64_t planArena(std::vector<PlannedBuffer> &buffers, uint64_t alignment) {
  // Greedy by size, and two tie-breaking variants (longest life first, then
  // earliest first): each is a few microseconds per buffer; the smallest wins.
  using Key = std::function<bool(const PlannedBuffer &, const PlannedBuffer &)>;
  std::vector<Key> orders = {
      [](const PlannedBuffer &a, const PlannedBuffer &b) { return a.bytes > b.bytes; },
      [](const PlannedBuffer &a, const PlannedBuffer &b) {
        return a.bytes * (a.last - a.first + 1) > b.bytes * (b.last - b.first + 1);
      },
      [](const PlannedBuffer &a, const PlannedBuffer &b) {
        return a.first != b.first ? a.first < b.first : a.bytes > b.bytes;
      }};
  uint64_t best = UINT64_MAX;
  std::vector<uint64_t> bestOffsets;
  for (const Key &key : orders) {
    std::vector<size_t> order(buffers.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return key(buffers[a], buffers[b]); });
    uint64_t size = placeInOrder(buffers, order, alignment);
    if (size < best) {
      best = size;
      bestOffsets.clear();
      for (const PlannedBuffer &b : buffers)
        bestOffsets.push_back(b.offset);
    }
  }
  for (size_t i = 0; i < buffers.size(); ++i)
    buffers[i].offset = bestOffsets[i];
  return buffers.empty() ? 0 : best;
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
