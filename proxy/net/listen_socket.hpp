// Listening sockets: one per worker and listener, all bound to the same address with
// SO_REUSEPORT so that the kernel spreads new connections over the workers. (libuv 1.44 has
// no UV_TCP_REUSEPORT, so the socket is made here and handed to uv_tcp_open.)
#pragma once
#include <string>

#include "config/config.hpp"

namespace xs::net {

// Creates, binds and listens; returns the fd or -1 with *error set. If addr has port 0 the
// kernel picks one: read it back with bound_address() and bind the other workers to it.
int open_listen_socket(const config::SocketAddress& addr, int backlog, std::string* error);

config::SocketAddress bound_address(int fd);

}  // namespace xs::net
