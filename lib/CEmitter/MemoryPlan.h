//===- MemoryPlan.h - arena offsets from tensor lifetimes -------*- C++ -*-===//
//
// Greedy by size (Pisarchyk & Lee 2020, TFLite Micro's planner): buffers
// sorted by size, each placed at the lowest offset that overlaps no placed
// buffer whose lifetime intersects its own.
//
//===----------------------------------------------------------------------===//

#ifndef REFOLD_LIB_CEMITTER_MEMORYPLAN_H
#define REFOLD_LIB_CEMITTER_MEMORYPLAN_H

#include <cstdint>
#include <vector>

namespace refold::cemit {

struct PlannedBuffer {
  uint64_t bytes = 0;
  unsigned first = 0, last = 0; // steps that write first / read last
  uint64_t offset = 0;          // filled by planArena
};

/// Assigns offsets (multiples of `alignment`); returns the arena size.
uint64_t planArena(std::vector<PlannedBuffer> &buffers, uint64_t alignment);

/// The largest total of bytes live at one step: no plan can be smaller.
uint64_t liveLowerBound(const std::vector<PlannedBuffer> &buffers);

} // namespace refold::cemit

#endif // REFOLD_LIB_CEMITTER_MEMORYPLAN_H
