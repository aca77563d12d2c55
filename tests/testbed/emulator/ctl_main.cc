// meshflow-overlay-ctl: changes the running overlay emulator from the shell.
//   meshflow-overlay-ctl --socket S set ct-serv-jp acer-agent --delay 40ms --loss 5%

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

namespace {

constexpr const char* kUsage =
    "usage: meshflow-overlay-ctl [--socket PATH] COMMAND [ARGS]\n"
    "  show                         nodes, links, counters (one line each)\n"
    "  cut A B [--one-way]          drop everything between A and B\n"
    "  restore A B [--one-way]      carry again\n"
    "  down A | up A                take node A off the overlay, bring it back\n"
    "  set A B [--one-way] [--rtt D | --delay D] [--jitter D] [--loss P] [--rate R]\n"
    "          [--mtu BYTES]        larger packets vanish (a path MTU black hole); 0: none\n"
    "                               e.g. --delay 40ms --loss 5% --rate 10mbit; --one-way: A->B\n"
    "  reset                        the topology's values again\n"
    "The socket defaults to $MESHFLOW_OVERLAY_SOCKET.\n";

}  // namespace

int main(int argc, char** argv) {
  std::string socket_path;
  if (const char* env = std::getenv("MESHFLOW_OVERLAY_SOCKET")) socket_path = env;
  std::vector<std::string> words;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (arg == "--socket" && words.empty()) {
      if (i + 1 >= argc) {
        std::cerr << "--socket needs a path\n" << kUsage;
        return 2;
      }
      socket_path = argv[++i];
      continue;
    }
    if (arg.find_first_of(" \t\n") != std::string::npos) {
      std::cerr << "arguments cannot contain white space: '" << arg << "'\n";
      return 2;
    }
    words.push_back(arg);
  }
  if (words.empty() || socket_path.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    std::cerr << "socket path too long\n";
    return 2;
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    std::cerr << "cannot reach the emulator at " << socket_path << ": " << std::strerror(errno)
              << "\n";
    return 3;
  }
  std::string line;
  for (const auto& w : words) line += (line.empty() ? "" : " ") + w;
  line += "\n";
  size_t off = 0;
  while (off < line.size()) {
    const ssize_t n = write(fd, line.data() + off, line.size() - off);
    if (n <= 0) {
      std::cerr << "write: " << std::strerror(errno) << "\n";
      return 3;
    }
    off += static_cast<size_t>(n);
  }
  std::string reply;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) reply.append(buf, static_cast<size_t>(n));
  close(fd);
  // The emulator answers "0 text" on success and "1 text" on a refused command.
  if (reply.size() < 2 || (reply[0] != '0' && reply[0] != '1')) {
    std::cerr << "no valid reply from the emulator\n";
    return 3;
  }
  (reply[0] == '0' ? std::cout : std::cerr) << reply.substr(2);
  return reply[0] == '0' ? 0 : 1;
}
