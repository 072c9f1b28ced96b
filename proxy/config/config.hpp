// The proxy's configuration as plain, validated structs. Built by load_config() from TOML;
// immutable once built and shared by every worker (a reload builds a new one).
#pragma once
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "routing/route_table.hpp"

namespace xs::config {

using Millis = std::chrono::milliseconds;

// Every tunable and its default, in one place.
struct ProxySettings {
    unsigned workers = 0;                   // 0 = one per CPU core
    std::string metrics = "127.0.0.1:9464"; // "" disables (served by the operations issue)
    Millis header_timeout{10'000};          // complete stream header within this
    std::size_t max_header_bytes = 4096;    // larger opening headers: policy-violation
    Millis drain_timeout{30'000};           // SIGTERM: live sessions may finish within this
    Millis connect_timeout{5'000};          // TCP connect to one backend
    Millis backend_timeout{10'000};         // backend must answer the replayed header
    Millis close_linger{5'000};             // after one side closed: flush and close within
    std::size_t high_water = 256 * 1024;    // pending bytes towards a peer: stop reading the other
    std::size_t low_water = 64 * 1024;      // resume reading below this
    int backlog = 4096;                     // listen(2) backlog per worker socket
};

struct SocketAddress {
    sockaddr_storage storage{};
    socklen_t len = 0;
    const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&storage); }
    std::string to_string() const;
};

struct ListenerConfig {
    std::string name;
    std::string bind;                     // as written
    SocketAddress address;
    std::vector<std::string> namespaces;  // content namespaces served (jabber:client, ...)
};

struct BackendConfig {
    std::string name;
    std::string address_text;  // as written
    SocketAddress address;     // resolved at load time
};

struct Config {
    std::string path;
    ProxySettings proxy;
    std::vector<ListenerConfig> listeners;
    std::vector<BackendConfig> backends;  // same order as routes->backends()
    std::shared_ptr<const routing::RouteTable> routes;

    const ListenerConfig* listener(const std::string& name) const;
};

}  // namespace xs::config
