#include "caulk/io/mapped_file.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "caulk/error.hpp"
#include "caulk/io/input_file.hpp"
#include "mapping_guard.hpp"

namespace caulk::io {

std::shared_ptr<const MappedFile> MappedFile::open(const std::filesystem::path& path) {
  const InputFile input = InputFile::open(path);  // closed on return: the mapping does not need it
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = input.size();
  if (file->size_ == 0) return file;  // mmap refuses length 0; an empty file has no data

  void* address = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, input.fd(), 0);
  if (address == MAP_FAILED)
    throw DataError(path.string(), "cannot map " + std::to_string(file->size_) + " bytes: " + std::strerror(errno));
  file->data_ = static_cast<const std::byte*>(address);
  file->guard_slot_ = detail::register_mapping(address, file->size_);
  return file;
}

MappedFile::~MappedFile() {
  detail::unregister_mapping(guard_slot_);
  if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
}

bool MappedFile::shrunk() const { return detail::mapping_shrunk(guard_slot_); }

void MappedFile::check_intact() const {
  if (shrunk())
    throw DataError(path_.string(),
                    "the file shrank while caulk was reading it (another program truncated or rewrote it?); "
                    "what was read is not used. Let it finish writing, then run again");
}

}  // namespace caulk::io
