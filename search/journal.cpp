#include "search/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace starsynth {

namespace {

// Every file starts with this, so that a journal is never mistaken for another file.
constexpr char kMagic[8] = {'S', 'T', 'A', 'R', 'J', 'N', 'L', '1'};

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}

uint32_t get_u32(const unsigned char* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }

void write_all(int fd, const std::string& bytes, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error(path + ": cannot append to the journal (" + std::strerror(errno) + ")");
    done += size_t(n);
  }
}

}  // namespace

uint32_t crc32(const void* data, size_t size) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::vector<pb::JournalRecord> Journal::read(const std::string& path, int64_t* valid_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot read the journal (" + std::strerror(errno) + ")");
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<pb::JournalRecord> records;
  if (data.empty()) {
    if (valid_bytes) *valid_bytes = 0;
    return records;
  }
  if (data.size() < sizeof kMagic || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0)
    throw std::runtime_error(path + ": not a starsynth journal");
  size_t at = sizeof kMagic;
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  while (at + 8 <= data.size()) {
    const uint32_t length = get_u32(bytes + at), crc = get_u32(bytes + at + 4);
    if (at + 8 + length > data.size() || crc32(bytes + at + 8, length) != crc) break;  // torn or corrupt tail
    pb::JournalRecord r;
    if (!r.ParseFromArray(bytes + at + 8, int(length))) break;
    records.push_back(std::move(r));
    at += 8 + length;
  }
  if (valid_bytes) *valid_bytes = int64_t(at);
  return records;
}

Journal::Journal(const std::string& path, std::vector<pb::JournalRecord>* records) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error(path + ": cannot open the journal (" + std::strerror(errno) + ")");
  int64_t valid = 0;
  std::vector<pb::JournalRecord> existing = read(path, &valid);
  const off_t size = ::lseek(fd_, 0, SEEK_END);
  if (size == 0) {
    write_all(fd_, std::string(kMagic, sizeof kMagic), path);
    ::fsync(fd_);
  } else if (size > valid) {
    dropped_ = int64_t(size) - valid;
    if (::ftruncate(fd_, valid) != 0) throw std::runtime_error(path + ": cannot cut the torn record off the journal");
    ::fsync(fd_);
  }
  if (records) *records = std::move(existing);
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

void Journal::append(const pb::JournalRecord& record) {
  std::string payload;
  record.SerializeToString(&payload);
  std::string frame;
  put_u32(frame, uint32_t(payload.size()));
  put_u32(frame, crc32(payload.data(), payload.size()));
  frame += payload;
  std::lock_guard<std::mutex> lock(mutex_);
  write_all(fd_, frame, path_);
  if (::fsync(fd_) != 0) throw std::runtime_error(path_ + ": cannot sync the journal (" + std::strerror(errno) + ")");
}

}  // namespace starsynth
