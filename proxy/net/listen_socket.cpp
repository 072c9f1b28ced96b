#include "net/listen_socket.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace xs::net {

int open_listen_socket(const config::SocketAddress& addr, int backlog, std::string* error) {
    int family = addr.storage.ss_family;
    int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    auto fail = [&](const char* what) {
        if (error) *error = std::string(what) + " " + addr.to_string() + ": " + std::strerror(errno);
        if (fd >= 0) ::close(fd);
        return -1;
    };
    if (fd < 0) return fail("socket");
    int one = 1;
    if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) return fail("SO_REUSEADDR");
    if (::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) return fail("SO_REUSEPORT");
    // An explicit IPv6 listener serves IPv6 only; configure a second listener for IPv4.
    if (family == AF_INET6 && ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
        return fail("IPV6_V6ONLY");
    if (::bind(fd, addr.sa(), addr.len) != 0) return fail("bind");
    if (::listen(fd, backlog) != 0) return fail("listen");
    return fd;
}

config::SocketAddress bound_address(int fd) {
    config::SocketAddress a;
    a.len = sizeof a.storage;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a.storage), &a.len) != 0) a.len = 0;
    return a;
}

}  // namespace xs::net
