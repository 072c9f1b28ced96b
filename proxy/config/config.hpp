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
#include "routing/stream_header_sniffer.hpp"

namespace xs::tls {
class CertStore;
}

namespace xs::config {

using Millis = std::chrono::milliseconds;

enum class LogFormat { KeyValue, Json };
enum class TlsMode { Passthrough, Terminate };
enum class Protocol { Xmpp, Http };
enum class CheckKind { Stream, Tcp, Http, None };

// Every tunable and its default, in one place.
struct ProxySettings {
    unsigned workers = 0;                   // 0 = one per CPU core
    std::string metrics = "127.0.0.1:9464"; // "" disables /metrics and /healthz
    Millis header_timeout{10'000};          // complete stream header within this
    std::size_t max_header_bytes = 4096;    // larger opening headers: policy-violation
    Millis drain_timeout{30'000};           // SIGTERM: live sessions may finish within this
    Millis connect_timeout{5'000};          // TCP connect to one backend
    Millis backend_timeout{10'000};         // backend must answer the replayed header
    Millis close_linger{5'000};             // after one side closed: flush and close within
    Millis keepalive_timeout{75'000};       // HTTP: a client connection idle between requests
    Millis hold_timeout{130'000};           // HTTP: a BOSH request's answer (the backend holds it)
    std::size_t high_water = 256 * 1024;    // pending bytes towards a peer: stop reading the other
    std::size_t low_water = 64 * 1024;      // resume reading below this
    int backlog = 4096;                     // listen(2) backlog per worker socket
    unsigned max_connections = 0;           // client connections in all; above it, accepting
                                            // pauses (the kernel queues); 0: the fd limit decides
    LogFormat log_format = LogFormat::KeyValue;  // session-end lines: key=value or JSON
    unsigned session_log_rate = 20;         // routine session-end lines per second per worker
                                            // (0: none); errors are never dropped silently
    std::vector<std::string> resolvers;     // DNS servers of `srv` backends ("IP[:PORT]");
                                            // empty: the system's (/etc/resolv.conf)
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
    std::vector<std::string> namespaces{std::string(routing::kClientNs),
                                        std::string(routing::kComponentNs)};  // content namespaces served
    double per_ip_rate = 0;               // new connections per second per source address (0: off)
    unsigned per_ip_burst = 0;            // bucket size; 0: max(1, 2 * per_ip_rate)
    std::string see_other_host;           // admission refusals send <see-other-host/> with this
    Protocol protocol = Protocol::Xmpp;   // http: WebSocket and BOSH (the HTTP front door)
    std::string shard_header;             // http: a response field naming the backend's shard
    TlsMode tls = TlsMode::Passthrough;   // terminate: STARTTLS (or Direct TLS) ends at the proxy
    bool direct_tls = false;              // XEP-0368: TLS from the first byte
};

struct BackendConfig {
    std::string name;
    std::string address_text;  // as written
    SocketAddress address;     // resolved at load time
    // DNS SRV discovery: a backend with `srv` is a group whose members are the SRV answer's
    // targets, each a backend of its own named by its target (config/discovered.hpp).
    std::string srv;                    // the SRV name; "" for a fixed address
    Millis srv_min_interval{2'000};     // re-resolve no sooner than this after an answer
    Millis srv_max_interval{60'000};    // and no later than this, whatever the records' TTL
    std::string member_suffix;          // appended to the members' names (two groups, one set
                                        // of pods: "-http")
    std::string group;                  // a discovered member: its group's name
    // Health checks (active, from the daemon's loop; a refused live connection marks the
    // backend down at once when checks are on).
    CheckKind check = CheckKind::None;   // "stream" or "tcp" turns active checks on
    Millis check_interval{2'000};
    Millis check_timeout{1'000};
    unsigned rise = 2;                 // consecutive passes to come back up
    unsigned fall = 2;                 // consecutive failures to go down
    bool drain = false;                // no new sessions; live ones stay
    // Admission control: shield a single-threaded backend from storms.
    unsigned max_connecting = 64;      // attempts in flight (connect + header answer); 0: no limit
    double max_new_per_second = 0;     // new sessions per second; 0: no limit
    unsigned max_queue = 4096;         // sessions waiting per worker beyond the limits
    Millis queue_timeout{10'000};      // a session waiting longer is refused
    unsigned max_sessions = 0;         // live sessions; 0: no limit
    std::string probe_domain;          // 'to' of the stream check (Host of the http check): first
                                       // exact domain routed here
    std::string check_path = "/http-bind";  // the http check's GET
    std::string vnode;                 // serves only HTTP requests with ?vnode= this (visitors)
    std::string shard;                 // the value of a listener's shard_header; "": the name
    bool proxy_protocol_v2 = false;    // send a PROXY v2 header (client address, TLS) first
};

struct Config {
    std::string path;
    ProxySettings proxy;
    SocketAddress metrics_address;        // resolved proxy.metrics (unset when metrics = "")
    std::vector<ListenerConfig> listeners;
    std::vector<BackendConfig> backends;  // same order as routes->backends()
    std::shared_ptr<const routing::RouteTable> routes;
    routing::TableSpec route_spec;        // what `routes` was compiled from (names as written)
    // Certificates of the terminating listeners ([[certificate]]); null when there are none.
    std::shared_ptr<const tls::CertStore> certs;
    const ListenerConfig* listener(const std::string& name) const;
};

}  // namespace xs::config
