// Turning a SIGBUS from a truncated memory-mapped file into an error (issue 18, defect 6).
//
// Reading a page of a mapping past the end of its file (another program truncated it after caulk
// mapped it) raises SIGBUS, which kills the process with no message. Every mapping caulk makes is
// registered here. A process-wide SIGBUS handler, when the faulting address lies in a registered
// mapping, maps zero pages over the rest of that mapping (so the interrupted read completes) and
// marks the mapping as shrunk; readers check the mark after reading (MappedFile::check_intact)
// and throw a DataError naming the file, so the zeros are never used. A fault anywhere else
// behaves as before: the previous handler runs, or the default action kills the process.
//
// The handler only reads and writes lock-free atomics and calls mmap (a plain system call on
// Linux), so it is async-signal-safe in practice.
#pragma once
#include <cstddef>

namespace caulk::io::detail {

// Registers [begin, begin + length); returns a slot, or -1 when the table is full (the mapping
// then works as before, unguarded).
int register_mapping(const void* begin, std::size_t length);
// Before the mapping is unmapped.
void unregister_mapping(int slot);
// True when a read of the registered mapping faulted past the end of its file.
bool mapping_shrunk(int slot);

}  // namespace caulk::io::detail
