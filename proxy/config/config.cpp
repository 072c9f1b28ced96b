#include "config/config.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

namespace xs::config {

// "host:port" or "[v6host]:port". Built with append() into one reserved string: GCC 12 at -O3
// reports a false -Wrestrict for "[" + std::string(...) (GCC bugs 105329/105651).
std::string SocketAddress::to_string() const {
    char host[INET6_ADDRSTRLEN] = "?";
    const bool v6 = storage.ss_family == AF_INET6;
    unsigned port = 0;
    if (storage.ss_family == AF_INET) {
        auto* a = reinterpret_cast<const sockaddr_in*>(&storage);
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
    } else if (v6) {
        auto* a = reinterpret_cast<const sockaddr_in6*>(&storage);
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
    } else {
        return "?";
    }
    std::string out;
    out.reserve(sizeof host + 8);
    if (v6) out.push_back('[');
    out.append(host);
    out.append(v6 ? "]:" : ":");
    out.append(std::to_string(port));
    return out;
}

}  // namespace xs::config
