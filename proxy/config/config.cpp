#include "config/config.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

namespace xs::config {

std::string SocketAddress::to_string() const {
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (storage.ss_family == AF_INET) {
        auto* a = reinterpret_cast<const sockaddr_in*>(&storage);
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        return std::string(host) + ":" + std::to_string(port);
    }
    if (storage.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<const sockaddr_in6*>(&storage);
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        return "[" + std::string(host) + "]:" + std::to_string(port);
    }
    return "?";
}

}  // namespace xs::config
