#include "metrics/exposition.hpp"
#include "session/snapshot.hpp"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <set>
#include <sstream>

#include "tls/tls_stream.hpp"
#include "upstream/backend_state.hpp"
#include "upstream/bosh_sessions.hpp"
#include "util/clock.hpp"

#ifndef XS_VERSION
#define XS_VERSION "0.0.0"
#endif

namespace xs::metrics {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// The families, in exposition order. Names start with xmpp_shard_.
enum Fam {
    kBuildInfo, kStartTime, kAccepted, kConnections, kRateLimited, kHeaderSeconds, kSessionsActive,
    kSessionsTotal, kSessionEnds, kStreamErrors, kBytes, kBackendUp, kBackendFailures,
    kBackendDraining, kBackendSessions, kBackendConnecting, kConnectSeconds, kConnectFailures,
    kQueueLength, kQueueWait, kAdmissionRefusals, kTlsHandshakes, kTlsHandshakeSeconds, kReloads,
    kLastReload, kHttpResponses, kWebSockets, kBoshSessions, kReused, kBackendHttp, kDiscMembers,
    kDiscResolutions, kDiscAge, kDiscLastSuccess, kFamCount
};

struct FamilyDecl {
    const char* name;
    const char* help;
    MetricType type;
};

constexpr FamilyDecl kFamilies[kFamCount] = {
    {"xmpp_shard_build_info", "Build information (always 1).", MetricType::Gauge},
    {"xmpp_shard_start_time_seconds", "Unix time the proxy started.", MetricType::Gauge},
    {"xmpp_shard_connections_accepted_total", "TCP connections accepted, by listener.", MetricType::Counter},
    {"xmpp_shard_connections_active", "Client connections open (any state), by listener.", MetricType::Gauge},
    {"xmpp_shard_connections_rate_limited_total", "Connections refused by the per-address rate limit.", MetricType::Counter},
    {"xmpp_shard_stream_header_seconds", "Time from accept to a complete stream header.", MetricType::Histogram},
    {"xmpp_shard_sessions_active", "Sessions relaying to a backend.", MetricType::Gauge},
    {"xmpp_shard_sessions_total", "Sessions that reached a backend.", MetricType::Counter},
    {"xmpp_shard_session_ends_total", "Ended sessions by reason.", MetricType::Counter},
    {"xmpp_shard_stream_errors_total", "Stream errors sent to clients, by RFC 6120 condition.", MetricType::Counter},
    {"xmpp_shard_bytes_total", "Bytes relayed, by backend and direction.", MetricType::Counter},
    {"xmpp_shard_backend_up", "1 if the backend is considered healthy.", MetricType::Gauge},
    {"xmpp_shard_backend_consecutive_failures", "Consecutive failed checks or connection attempts.", MetricType::Gauge},
    {"xmpp_shard_backend_draining", "1 if the backend takes no new sessions (drain = true).", MetricType::Gauge},
    {"xmpp_shard_backend_sessions", "Live sessions on the backend (all workers).", MetricType::Gauge},
    {"xmpp_shard_backend_connecting", "Connection attempts in flight to the backend.", MetricType::Gauge},
    {"xmpp_shard_backend_connect_seconds", "TCP connect time to the backend.", MetricType::Histogram},
    {"xmpp_shard_backend_connect_failures_total", "Failed attempts (refused, timed out, no answer).", MetricType::Counter},
    {"xmpp_shard_backend_queue_length", "Sessions waiting for admission to the backend.", MetricType::Gauge},
    {"xmpp_shard_backend_queue_wait_seconds", "Time sessions waited for admission.", MetricType::Histogram},
    {"xmpp_shard_admission_refusals_total", "Sessions refused by admission control, by reason.", MetricType::Counter},
    {"xmpp_shard_tls_handshakes_total", "TLS handshakes on terminating listeners, by result.", MetricType::Counter},
    {"xmpp_shard_tls_handshake_seconds", "Time to complete a TLS handshake with a client.", MetricType::Histogram},
    {"xmpp_shard_config_reloads_total", "Configuration reloads by result.", MetricType::Counter},
    {"xmpp_shard_config_last_reload_success_timestamp_seconds", "Unix time of the last good configuration load.", MetricType::Gauge},
    {"xmpp_shard_http_responses_total", "HTTP listeners: answers by status class (the backend's, or the proxy's refusal).", MetricType::Counter},
    {"xmpp_shard_websocket_sessions_active", "HTTP listeners: WebSocket sessions upgraded and relaying.", MetricType::Gauge},
    {"xmpp_shard_bosh_sessions", "HTTP listeners: BOSH sessions known (sid seen created, not expired), by backend.", MetricType::Gauge},
    {"xmpp_shard_backend_connections_reused_total", "HTTP requests sent on a kept-alive backend connection from the idle pool.", MetricType::Counter},
    {"xmpp_shard_backend_http_responses_total", "HTTP backends: their answers by status class.", MetricType::Counter},
    {"xmpp_shard_discovery_members", "srv backends: members in the last good SRV answer, by group.", MetricType::Gauge},
    {"xmpp_shard_discovery_resolutions_total", "srv backends: SRV resolutions by group and result (a failure keeps the last set).", MetricType::Counter},
    {"xmpp_shard_discovery_set_age_seconds", "srv backends: seconds since the group's set was last confirmed by a good answer (-1: never).", MetricType::Gauge},
    {"xmpp_shard_discovery_last_success_timestamp_seconds", "srv backends: unix time of the last good answer (0: never).", MetricType::Gauge},
};

using Labels = std::vector<ClientMetric::Label>;
constexpr const char* kClasses[kHttpClassCount] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

// Sums values of the same label set over the workers.
struct Acc {
    std::map<Labels, double> values;
    struct Hist {
        std::vector<uint64_t> buckets = std::vector<uint64_t>(kLatencyBounds.size() + 1, 0);
        double sum = 0;
    };
    std::map<Labels, Hist> hists;
    void add(const Labels& l, double v) { values[l] += v; }
    void add(const Labels& l, const LocalHistogram& h) {
        Hist& acc = hists[l];
        for (std::size_t i = 0; i < acc.buckets.size(); ++i) acc.buckets[i] += h.bucket(i);
        acc.sum += h.sum();
    }
};

void emit(MetricFamily& f, const Acc& a) {
    for (const auto& [labels, v] : a.values) {
        ClientMetric m;
        m.label = labels;
        if (f.type == MetricType::Counter) m.counter.value = v;
        else m.gauge.value = v;
        f.metric.push_back(std::move(m));
    }
    for (const auto& [labels, h] : a.hists) {
        ClientMetric m;
        m.label = labels;
        uint64_t cumulative = 0;
        for (std::size_t i = 0; i < h.buckets.size(); ++i) {
            cumulative += h.buckets[i];
            double bound = i < kLatencyBounds.size() ? kLatencyBounds[i]
                                                     : std::numeric_limits<double>::infinity();
            m.histogram.bucket.push_back({cumulative, bound});
        }
        m.histogram.sample_count = cumulative;
        m.histogram.sample_sum = h.sum;
        f.metric.push_back(std::move(m));
    }
}

}  // namespace

std::string render(const std::vector<std::shared_ptr<WorkerStats>>& workers,
                   const config::Config& cfg, const session::Runtime& rt, const DaemonCounters& daemon) {
    std::vector<Acc> acc(kFamCount);
    std::set<std::string, std::less<>> terminating, http;
    for (const auto& l : cfg.listeners) {
        if (l.tls == config::TlsMode::Terminate) terminating.insert(l.name);
        if (l.protocol == config::Protocol::Http) http.insert(l.name);
    }
    acc[kBuildInfo].add({{"version", XS_VERSION}}, 1);
    acc[kStartTime].add({}, daemon.start_seconds);

    for (const auto& w : workers) {
        w->visit([&](const auto& sessions, const auto& backends, const auto& listeners,
                     const auto& ends, const auto& errors) {
            for (const auto& [name, c] : listeners) {
                Labels l{{"listener", name}};
                acc[kAccepted].add(l, static_cast<double>(c->accepted.get()));
                acc[kConnections].add(l, static_cast<double>(c->connections.get()));
                acc[kRateLimited].add(l, static_cast<double>(c->rate_limited.get()));
                acc[kHeaderSeconds].add(l, c->header_seconds);
                if (c->tls_handshake_seconds.bucket(kLatencyBounds.size()) + c->tls_handshakes.at(0).get() > 0 ||
                    terminating.count(name)) {
                    for (std::size_t i = 0; i < kTlsResultCount; ++i)
                        acc[kTlsHandshakes].add({{"listener", name}, {"result", std::string(tls::to_string(static_cast<tls::TlsFailure>(i)))}},
                                                static_cast<double>(c->tls_handshakes.at(i).get()));
                    acc[kTlsHandshakeSeconds].add(l, c->tls_handshake_seconds);
                }
                if (http.count(name) || c->websockets.get() != 0) {
                    for (std::size_t i = 0; i < kHttpClassCount; ++i)
                        acc[kHttpResponses].add({{"class", kClasses[i]}, {"listener", name}},
                                                static_cast<double>(c->http_responses.at(i).get()));
                    acc[kWebSockets].add(l, static_cast<double>(c->websockets.get()));
                }
            }
            for (const auto& [key, c] : sessions) {
                Labels l{{"backend", std::get<2>(key)}, {"listener", std::get<0>(key)},
                         {"route", std::get<1>(key)}};
                acc[kSessionsActive].add(l, static_cast<double>(c->active.get()));
                acc[kSessionsTotal].add(l, static_cast<double>(c->total.get()));
            }
            for (const auto& [name, c] : backends) {
                Labels b{{"backend", name}};
                acc[kBytes].add({{"backend", name}, {"direction", "to_backend"}}, static_cast<double>(c->bytes[Direction::ToBackend].get()));
                acc[kBytes].add({{"backend", name}, {"direction", "to_client"}}, static_cast<double>(c->bytes[Direction::ToClient].get()));
                acc[kConnectSeconds].add(b, c->connect_seconds);
                acc[kConnectFailures].add(b, static_cast<double>(c->connect_failures.get()));
                acc[kReused].add(b, static_cast<double>(c->reused.get()));
                if (!http.empty())  // a config with an http listener: every backend's series
                    for (std::size_t i = 0; i < kHttpClassCount; ++i)
                        acc[kBackendHttp].add({{"backend", name}, {"class", kClasses[i]}},
                                              static_cast<double>(c->http_responses.at(i).get()));
                acc[kQueueLength].add(b, static_cast<double>(c->queued.get()));
                acc[kQueueWait].add(b, c->queue_wait_seconds);
                for (std::size_t i = 0; i < kAdmissionCount; ++i)
                    acc[kAdmissionRefusals].add(
                        {{"backend", name}, {"reason", std::string(to_string(static_cast<Admission>(i)))}},
                        static_cast<double>(c->admission_refusals.at(i).get()));
            }
            for (std::size_t i = 0; i < session::kEndReasonCount; ++i)
                acc[kSessionEnds].add({{"reason", std::string(session::to_string(static_cast<session::EndReason>(i)))}},
                                      static_cast<double>(ends.at(i).get()));
            for (std::size_t i = 0; i < kConditionCount; ++i)
                acc[kStreamErrors].add({{"condition", std::string(routing::to_string(static_cast<routing::StreamCondition>(i)))}},
                                       static_cast<double>(errors.at(i).get()));
        });
    }
    if (!http.empty() && rt.bosh) {
        auto known = rt.bosh->per_backend();
        for (const auto& b : cfg.backends) {
            auto it = known.find(b.name);
            acc[kBoshSessions].add({{"backend", b.name}}, it == known.end() ? 0.0 : static_cast<double>(it->second));
        }
    }
    for (std::size_t i = 0; i < cfg.backends.size(); ++i) {
        const auto& st = *rt.states[i];
        Labels b{{"backend", cfg.backends[i].name}};
        acc[kBackendUp].add(b, st.up() ? 1 : 0);
        acc[kBackendFailures].add(b, st.consecutive_failures());
        acc[kBackendDraining].add(b, cfg.backends[i].drain ? 1 : 0);
        acc[kBackendSessions].add(b, static_cast<double>(st.sessions()));
        acc[kBackendConnecting].add(b, static_cast<double>(st.connecting()));
    }
    acc[kReloads].add({{"result", "success"}}, static_cast<double>(daemon.reloads_success.load()));
    acc[kReloads].add({{"result", "failure"}}, static_cast<double>(daemon.reloads_failure.load()));
    acc[kLastReload].add({}, daemon.last_reload_success_seconds.load());
    if (daemon.discovery) {
        double now = util::unix_now();
        for (const auto& g : daemon.discovery()) {
            Labels l{{"backend", g.backend}};
            acc[kDiscMembers].add(l, static_cast<double>(g.members));
            acc[kDiscResolutions].add({{"backend", g.backend}, {"result", "success"}}, static_cast<double>(g.successes));
            acc[kDiscResolutions].add({{"backend", g.backend}, {"result", "failure"}}, static_cast<double>(g.failures));
            acc[kDiscAge].add(l, g.last_success > 0 ? now - g.last_success : -1);
            acc[kDiscLastSuccess].add(l, g.last_success);
        }
    }

    std::vector<MetricFamily> families;
    for (int f = 0; f < kFamCount; ++f) {
        MetricFamily fam;
        fam.name = kFamilies[f].name;
        fam.help = kFamilies[f].help;
        fam.type = kFamilies[f].type;
        emit(fam, acc[f]);
        families.push_back(std::move(fam));
    }
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, families);
    return out.str();
}

}  // namespace xs::metrics
