#include "caulk/file_hash.hpp"

#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <nlohmann/json.hpp>
#include <vector>

#include "caulk/error.hpp"
#include "caulk/io/input_file.hpp"
#include "caulk/json_text.hpp"

namespace fs = std::filesystem;

namespace caulk {

namespace {

std::string hex_of(const XXH128_hash_t& h) {
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, h);
  static const char digits[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[static_cast<std::size_t>(2 * i)] = digits[canonical.digest[i] >> 4];
    out[static_cast<std::size_t>(2 * i + 1)] = digits[canonical.digest[i] & 15];
  }
  return out;
}

io::FileStat stat_of(const struct stat& st) {
  return {static_cast<std::uintmax_t>(st.st_size), static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
          static_cast<std::uint64_t>(st.st_ino), static_cast<std::uint64_t>(st.st_dev)};
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string key_of(const fs::path& path) {
  std::error_code ec;
  fs::path p = fs::absolute(path, ec);
  return (ec ? path : p).lexically_normal().string();
}

// How long after a modification time another write may still leave the same time: the clock
// tick of modification times. A filesystem that stamps whole seconds (FAT's two, ext3's and HFS+'s
// one) may give two writes up to two seconds apart the same time; one that stamps fractions (ext4,
// XFS, btrfs, tmpfs: nanoseconds; exFAT: 10 ms) takes them from the kernel's coarse clock, which
// ticks every 10 ms at most. A time on a whole second is taken for the coarse kind.
std::int64_t racy_window_ns(std::int64_t mtime_ns) { return mtime_ns % 1'000'000'000 == 0 ? 2'000'000'000 : 100'000'000; }

// The file's hash if it has the identity `expected` before and after it is read; else nothing.
std::optional<std::string> hash_if_still(const fs::path& path, const io::FileStat& expected) {
  io::FileStat seen;
  std::string hash;
  try {
    hash = hash_file(path, std::size_t{64} << 10, &seen);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  const auto after = stat_file(path);
  if (!(seen == expected) || !after || !(*after == expected)) return std::nullopt;  // changed meanwhile
  return hash;
}

}  // namespace

const KnownFile* find_known(const KnownFiles* files, const std::string& path) {
  if (!files) return nullptr;
  const auto it = files->find(path);
  return it == files->end() ? nullptr : &it->second;
}

std::string content_hash(std::string_view bytes) { return hex_of(XXH3_128bits(bytes.data(), bytes.size())); }

std::optional<io::FileStat> stat_file(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return stat_of(st);
}

std::string hash_file(const fs::path& path, std::size_t chunk_bytes, io::FileStat* seen) {
  // Opened through InputFile (no FIFO or device), but not recorded as a node's read: hashing is
  // the engine's own business.
  io::ScopedAccessLog no_log(nullptr);
  const io::InputFile file = io::InputFile::open(path);
  struct stat st {};
  if (::fstat(file.fd(), &st) != 0) throw DataError(path.string(), std::string("cannot stat: ") + std::strerror(errno));
  if (seen) *seen = stat_of(st);
  XXH3_state_t* state = XXH3_createState();
  if (!state) throw std::bad_alloc();
  struct Free {
    XXH3_state_t* s;
    ~Free() { XXH3_freeState(s); }
  } free_state{state};
  XXH3_128bits_reset(state);
  // One buffer per thread, reused for every file: a fresh megabyte per file is hundreds of fresh
  // memory pages, which cost more than hashing a small file.
  thread_local std::vector<char> buffer;
  const std::size_t size = std::max<std::size_t>(1, chunk_bytes);
  if (buffer.size() < size) buffer.resize(size);
  off_t offset = 0;
  for (;;) {
    const ssize_t n = ::pread(file.fd(), buffer.data(), size, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw DataError(path.string(), std::string("cannot read: ") + std::strerror(errno));
    if (n == 0) break;
    XXH3_128bits_update(state, buffer.data(), static_cast<std::size_t>(n));
    offset += n;
  }
  return hex_of(XXH3_128bits_digest(state));
}

bool FileHashCache::trusted(const Entry& e) const { return e.stat.mtime_ns + racy_window_ns(e.stat.mtime_ns) <= e.hashed_at_ns; }

std::optional<std::string> FileHashCache::hash(const fs::path& path, io::FileStat* seen) {
  const auto now = stat_file(path);
  if (!now) return std::nullopt;
  if (seen) *seen = *now;
  return hash_as_seen(path, *now);
}

std::optional<std::string> FileHashCache::hash_if_unchanged(const fs::path& path, const io::FileStat& expected) {
  const auto now = stat_file(path);
  if (!now || !(*now == expected)) return std::nullopt;
  return hash_as_seen(path, expected);
}

std::optional<std::string> FileHashCache::hash_as_seen(const fs::path& path, const io::FileStat& expected) {
  const std::string key = key_of(path);
  {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    // This run's own entries are exact whatever their age: the file is the one hashed moments ago
    // unless rewritten in the same tick, which would make the reader's record just as ambiguous.
    if (it != entries_.end() && it->second.stat == expected && (trusted(it->second) || it->second.this_run)) return it->second.hash;
  }
  const std::int64_t started = now_ns();
  auto hash = hash_if_still(path, expected);
  if (!hash) return std::nullopt;
  std::lock_guard lock(mutex_);
  ++hashed_;
  entries_[key] = Entry{expected, *hash, started, true};
  return hash;
}

std::size_t FileHashCache::confirm_settled(std::uintmax_t budget_bytes) {
  std::vector<std::pair<std::string, io::FileStat>> settled;
  {
    const std::int64_t now = now_ns();
    std::lock_guard lock(mutex_);
    for (const auto& [path, e] : entries_)
      if (e.this_run && !trusted(e) && e.stat.mtime_ns + racy_window_ns(e.stat.mtime_ns) <= now && e.stat.size <= budget_bytes) {
        budget_bytes -= e.stat.size;
        settled.emplace_back(path, e.stat);
      }
  }
  std::size_t confirmed = 0;
  for (const auto& [path, stat] : settled) {
    const std::int64_t started = now_ns();
    const auto hash = hash_if_still(path, stat);
    if (!hash) continue;  // changed: hashed again when next asked
    std::lock_guard lock(mutex_);
    entries_[path] = Entry{stat, *hash, started, true};
    ++confirmed;
  }
  return confirmed;
}

std::string FileHashCache::to_json_text() const {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  std::lock_guard lock(mutex_);
  for (const auto& [path, e] : entries_) {
    if (!trusted(e)) continue;  // racy: hash it again next time
    const std::int64_t at = e.hashed_at_ns;
    j[path] = {{"size", e.stat.size},     {"mtime_ns", e.stat.mtime_ns}, {"inode", e.stat.inode},
               {"device", e.stat.device}, {"xxh3_128", e.hash},          {"hashed_at_ns", at}};
  }
  return json_text(j, 0) + "\n";
}

void FileHashCache::load_json_text(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return;
  std::lock_guard lock(mutex_);
  for (const auto& [path, v] : j.items()) {
    try {
      Entry e;
      e.stat.size = v.at("size").get<std::uintmax_t>();
      e.stat.mtime_ns = v.at("mtime_ns").get<std::int64_t>();
      e.stat.inode = v.at("inode").get<std::uint64_t>();
      e.stat.device = v.at("device").get<std::uint64_t>();
      e.hash = v.at("xxh3_128").get<std::string>();
      e.hashed_at_ns = v.at("hashed_at_ns").get<std::int64_t>();
      if (e.hash.size() == 32 && e.hashed_at_ns > 0) entries_.emplace(path, std::move(e));
    } catch (const std::exception&) {
      // A damaged entry is forgotten: the file is hashed again.
    }
  }
}

std::size_t FileHashCache::hashed_count() const {
  std::lock_guard lock(mutex_);
  return hashed_;
}

}  // namespace caulk
