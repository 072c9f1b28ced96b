// The schema's tables: every key of every section, in the order of the reference. A key's
// default is the initial value of the field it fills (config.hpp, routing/route_table.hpp,
// tls/tls_context.hpp), so it is written once.
#include "config/schema.hpp"

#include "routing/stream_header_sniffer.hpp"

namespace xs::config::schema {
namespace {

using routing::RouteSpec;
using tls::CertificateSpec;

constexpr Choice kLogFormats[] = {{"kv", int(LogFormat::KeyValue)}, {"json", int(LogFormat::Json)}};
constexpr Choice kTlsModes[] = {{"passthrough", int(TlsMode::Passthrough)},
                                {"terminate", int(TlsMode::Terminate)}};
constexpr Choice kNamespaces[] = {{routing::kClientNs, 0}, {routing::kComponentNs, 0}};
constexpr Choice kProxyProtocols[] = {{"none", 0}, {"v2", 1}};
constexpr Choice kChecks[] = {{"stream", int(CheckKind::Stream)},
                              {"tcp", int(CheckKind::Tcp)},
                              {"http", int(CheckKind::Http)},
                              {"none", int(CheckKind::None)}};
constexpr Choice kBalances[] = {{"failover", int(routing::Balance::Failover)},
                                {"hash", int(routing::Balance::Hash)}};
constexpr Choice kHashKeys[] = {{"domain", int(routing::HashKey::Domain)},
                                {"room", int(routing::HashKey::Room)}};
constexpr Choice kProtocols[] = {{"xmpp", int(Protocol::Xmpp)}, {"http", int(Protocol::Http)}};

using P = ProxySettings;
const Key<P> kProxy[] = {
    integer("workers", &P::workers, 0, 256,
            "event-loop threads; 0: one per CPU core (a change needs a restart)"),
    address("metrics", Type::ListenAddress, &P::metrics, nullptr,
            "HTTP endpoint serving `/metrics` (Prometheus) and `/healthz`; `\"\"` turns it off "
            "(a change needs a restart)")
        .empty_off(),
    duration("header_timeout", &P::header_timeout, Zero::Refused,
             "a client must send its complete opening stream header within this, else "
             "`<connection-timeout/>`; with `tls = \"terminate\"` it covers everything up to the "
             "header after the handshake"),
    integer("max_header_bytes", &P::max_header_bytes, 128, 1 << 20,
            "longer opening headers (XML declaration included) get `<policy-violation/>`"),
    duration("drain_timeout", &P::drain_timeout, Zero::Allowed,
             "after SIGTERM/SIGINT live sessions may finish within this, then they are cut"),
    duration("connect_timeout", &P::connect_timeout, Zero::Refused,
             "TCP connect to one backend; on timeout the route's next backend is tried"),
    duration("backend_timeout", &P::backend_timeout, Zero::Refused,
             "a backend must answer the replayed header within this, else the next one is tried"),
    duration("close_linger", &P::close_linger, Zero::Refused,
             "after one side closed: flush to the other side and close within this"),
    duration("keepalive_timeout", &P::keepalive_timeout, Zero::Refused,
             "http listeners: a client connection may sit idle this long between requests, "
             "then it is closed (once a request has begun, `header_timeout` bounds its head)"),
    duration("hold_timeout", &P::hold_timeout, Zero::Refused,
             "http listeners: how long a BOSH request may wait for its answer, in place of "
             "`backend_timeout` (the backend holds a poll for up to the session's `wait`; "
             "Prosody's `bosh_max_wait` is 120 s)"),
    integer("high_water", &P::high_water, 4096, 64 << 20,
            "bytes queued towards one peer before reading from the other stops; above `low_water`"),
    integer("low_water", &P::low_water, 0, 64 << 20,
            "reading resumes when the queue is below this; below `high_water`"),
    integer("backlog", &P::backlog, 1, 65535, "listen(2) backlog of each worker's socket"),
    integer("max_connections", &P::max_connections, 0, 10'000'000,
            "client connections held across all listeners; above it accepting pauses (new "
            "connections wait in the kernel's backlog); 0: the descriptor limit decides"),
    enumeration("log_format", enum_field<&P::log_format>(), kLogFormats,
                "session-end log lines as `key=value` pairs or as one JSON object"),
    integer("session_log_rate", &P::session_log_rate, 0, 1'000'000,
            "routine session-end log lines per second per worker (0: none); error lines have "
            "their own bound of 200 per second; what is dropped is counted in a summary line"),
    strings("resolvers", &P::resolvers,
            "DNS servers (`IP` or `IP:PORT`, port 53 by default) asked for the `srv` backends; `[]`: "
            "the system's (`/etc/resolv.conf`, with its search domains)"),
};

using L = ListenerConfig;
const Key<L> kListener[] = {
    string("name", &L::name, "unique; named by routes' `listeners`, metric labels and logs").required(),
    address("bind", Type::ListenAddress, &L::bind, address_field<&L::address>(),
            "address to listen on; `\"[::]:5222\"` is IPv6 only (add a listener per family); "
            "port 0: a free port")
        .required(),
    enumeration("protocol", enum_field<&L::protocol>(), kProtocols,
                "`xmpp`: XMPP streams (RFC 6120); `http`: HTTP/1.1 for XMPP over WebSocket "
                "(RFC 7395, `/xmpp-websocket`) and BOSH (XEP-0206, `/http-bind`), routed on the "
                "Host header and, with a route's `hash_key = \"room\"`, on `?room=`"),
    string("shard_header", &L::shard_header,
           "http listeners: a response header field naming the backend's `shard` on every "
           "response (and on the `101` of a WebSocket upgrade; Jitsi clients compare `X-Jitsi-Shard` to notice a moved "
           "room); `\"\"`: none"),
    strings("namespaces", &L::namespaces,
            "content namespaces served; a stream header with another one gets `<invalid-namespace/>`")
        .items(kNamespaces, "namespace")
        .non_empty(),
    enumeration("tls", enum_field<&L::tls>(), kTlsModes,
                "`passthrough`: the client does TLS with the backend; `terminate`: the proxy "
                "offers and requires STARTTLS (on `protocol = \"http\"`: HTTPS); needs a "
                "`[[certificate]]`"),
    boolean("direct_tls", &L::direct_tls,
            "XEP-0368 Direct TLS: TLS from the first byte (in passthrough mode routed on the "
            "ClientHello's SNI)"),
    number("per_ip_rate", &L::per_ip_rate, 0, 1e6,
           "new connections per second per source address, more are refused; 0: no limit"),
    integer("per_ip_burst", &L::per_ip_burst, 0, 1'000'000,
            "bucket size of `per_ip_rate`; 0: max(1, 2 * per_ip_rate)"),
    host_port("see_other_host", &L::see_other_host,
              "when set, admission and rate-limit refusals send `<see-other-host/>` with this "
              "instead of `<policy-violation/>`"),
};

using B = BackendConfig;
const Key<B> kBackend[] = {
    string("name", &B::name, "unique; named by routes' `backends`, metric labels and logs").required(),
    address("address", Type::Address, &B::address_text, address_field<&B::address>(),
            "where the backend listens; host names are resolved when the file is loaded; "
            "exactly one of `address` and `srv` is needed"),
    string("srv", &B::srv,
           "a DNS SRV name (`_xmpp-client._tcp.prosody.jitsi.svc.cluster.local`): the backend is a "
           "group of the answer's targets, each a backend named by its target (a stable pod name) "
           "at its port and A/AAAA address, re-resolved on the records' TTL; routes name the group; "
           "the members take every other key of this table; a failed resolution keeps the last set"),
    duration("srv_min_interval", &B::srv_min_interval, Zero::Refused,
             "`srv`: re-resolve no sooner than this after an answer (a shorter TTL is raised to it); "
             "also the first retry after a failure, doubled on each failure up to `srv_max_interval`"),
    duration("srv_max_interval", &B::srv_max_interval, Zero::Refused,
             "`srv`: re-resolve at least this often, whatever the records' TTL"),
    string("member_suffix", &B::member_suffix,
           "`srv`: appended to every member's name, for two groups over the same targets (the XMPP "
           "and the HTTP port of the same pods: `\"-http\"`), whose names would clash otherwise"),
    enumeration("proxy_protocol", enum_field<&B::proxy_protocol_v2>(), kProxyProtocols,
                "`v2`: send a PROXY protocol v2 header (client address, requested domain, TLS "
                "details) before the client's bytes"),
    enumeration("check", enum_field<&B::check>(), kChecks,
                "active health check: `tcp` connects; `stream` also sends a stream header to the "
                "first exact domain routed here (else `localhost`) and passes on any stream header; "
                "`http` (backends of HTTP listeners) sends `GET check_path` with that Host and "
                "passes on a 2xx answer"),
    url_path("check_path", &B::check_path, "the path the `http` health check requests"),
    string("shard", &B::shard, "the value of an http listener's `shard_header` for this backend; "
                               "`\"\"`: the backend's name"),
    string("vnode", &B::vnode,
           "a Jitsi visitor node (`prosody-vN`): the backend takes only HTTP requests with "
           "`?vnode=` this value, and such requests go only to the route's backends of that "
           "node; `\"\"`: requests without `?vnode=`"),
    duration("check_interval", &B::check_interval, Zero::Refused, "time between two health checks"),
    duration("check_timeout", &B::check_timeout, Zero::Refused, "a health check not passed within this fails"),
    integer("rise", &B::rise, 1, 100, "health checks passed in a row to come back up"),
    integer("fall", &B::fall, 1, 100, "health checks failed in a row to go down"),
    boolean("drain", &B::drain, "no new sessions, live ones stay (apply with SIGHUP)"),
    integer("max_connecting", &B::max_connecting, 0, 1'000'000,
            "attempts in flight (connect and header answer; for a BOSH request: until it is sent, "
            "its hold does not count); more wait in the queue; 0: no limit"),
    number("max_new_per_second", &B::max_new_per_second, 0, 1e6,
           "new sessions per second (a BOSH request with a `sid` continues a session: no admission "
           "at all); more wait in the queue; 0: no limit"),
    integer("max_queue", &B::max_queue, 0, 1'000'000,
            "sessions waiting for admission per worker; more are refused"),
    duration("queue_timeout", &B::queue_timeout, Zero::Refused,
             "a session waiting in the queue longer is refused"),
    integer("max_sessions", &B::max_sessions, 0, 10'000'000,
            "live sessions; at the cap the route's next backend is tried; 0: no limit"),
};

const Key<RouteSpec> kRoute[] = {
    string("name", &RouteSpec::name, "the route's name in metric labels and logs; unique")
        .note("its first domain"),
    strings("domains", &RouteSpec::domains,
            "exact domains, `*.suffix` (`a.suffix`, `a.b.suffix`, not `suffix`) or `*`")
        .required(),
    strings("backends", &RouteSpec::backends, "backend names, in failover order").required(),
    enumeration("balance", enum_field<&RouteSpec::balance>(), kBalances,
                "`failover`: the backends in list order; `hash`: in the order of a rendezvous "
                "hash of the domain"),
    enumeration("hash_key", enum_field<&RouteSpec::hash_key>(), kHashKeys,
                "what `balance = \"hash\"` ranks by: `domain`, or `room` (HTTP listeners: the "
                "`?room=` value with its tenant, so a room's participants share one backend; a "
                "request without a room hashes on the domain)"),
    strings("listeners", &RouteSpec::listeners,
            "listener names the route applies on; `[]`: every listener"),
};

using C = CertificateSpec;
const Key<C> kCertificate[] = {
    path("cert", &C::cert_path, "PEM file: the leaf certificate, then its chain").required(),
    path("key", &C::key_path, "PEM file: the unencrypted private key of the leaf").required(),
    strings("domains", &C::domains,
            "names served with this certificate (exact or `*.parent`); each must be covered by it")
        .required(),
};

}  // namespace

const Section<ProxySettings>& proxy_section() {
    static const Section<ProxySettings> s{
        "proxy", false, "Process-wide settings. Optional, as is each of its keys.", kProxy};
    return s;
}

const Section<ListenerConfig>& listener_section() {
    static const Section<ListenerConfig> s{
        "listener", true, "A socket clients connect to. At least one.", kListener};
    return s;
}

const Section<BackendConfig>& backend_section() {
    static const Section<BackendConfig> s{
        "backend", true,
        "An XMPP server the proxy forwards streams to, with its health checks and admission "
        "control. At least one.",
        kBackend};
    return s;
}

const Section<routing::RouteSpec>& route_section() {
    static const Section<routing::RouteSpec> s{
        "route", true,
        "Which backends serve which domains. At least one. A stream's `to` is matched exactly "
        "first, then against the longest `*.suffix`, then `*`.",
        kRoute};
    return s;
}

const Section<tls::CertificateSpec>& certificate_section() {
    static const Section<tls::CertificateSpec> s{
        "certificate", true,
        "A certificate of the listeners with `tls = \"terminate\"` (at least one is needed then). "
        "Paths are relative to the configuration file's folder. Chosen by SNI, else by the "
        "stream's `to`, else the first.",
        kCertificate};
    return s;
}

std::vector<std::string_view> section_names() {
    return {proxy_section().name, listener_section().name, backend_section().name,
            route_section().name, certificate_section().name};
}

}  // namespace xs::config::schema
