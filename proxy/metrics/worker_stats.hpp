// One worker's statistics. Written only by that worker's loop thread; read by the scraper,
// which merges every worker's values at scrape time. The mutex guards only the maps' structure
// (a cell is created on first use, once per label set); sessions keep pointers to their cells,
// so relaying never takes it.
#pragma once
#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>

#include "metrics/local.hpp"
#include "routing/stream_condition.hpp"
#include "session/end_reason.hpp"

namespace xs::tls {
enum class TlsFailure;
}

namespace xs::metrics {

// Counters indexed by a named enum (never by a bare 0/1); the scraper walks them in enum order.
template <typename E, std::size_t N>
class CountersBy {
public:
    LocalCounter& operator[](E e) { return a_[static_cast<std::size_t>(e)]; }
    const LocalCounter& operator[](E e) const { return a_[static_cast<std::size_t>(e)]; }
    const LocalCounter& at(std::size_t i) const { return a_[i]; }
    static constexpr std::size_t size() { return N; }

private:
    std::array<LocalCounter, N> a_;
};

enum class Direction { ToBackend, ToClient };
// HTTP listeners: the status class of each answer (the backend's, or the proxy's refusal).
enum class HttpClass { C1xx, C2xx, C3xx, C4xx, C5xx };
inline constexpr std::size_t kHttpClassCount = 5;

using HttpCounters = CountersBy<HttpClass, kHttpClassCount>;
// Counts an HTTP status (100..599) in its class; others are not counted.
inline void count_http_status(HttpCounters& c, int status) {
    if (status >= 100 && status <= 599) c[static_cast<HttpClass>(status / 100 - 1)].add();
}

inline constexpr std::size_t kConditionCount = 13;  // routing::StreamCondition values
inline constexpr std::size_t kTlsResultCount = 7;   // tls::TlsFailure values (None = "ok")

enum class Admission { QueueFull, QueueTimeout, MaxSessions };
inline constexpr std::size_t kAdmissionCount = 3;
std::string_view to_string(Admission a);

class WorkerStats {
public:
    struct SessionCell {
        LocalGauge active;
        LocalCounter total;
    };
    struct BackendCell {
        CountersBy<Direction, 2> bytes;
        LocalHistogram connect_seconds;
        LocalCounter connect_failures;
        LocalCounter reused;  // HTTP requests sent on an idle pooled connection
        HttpCounters http_responses;  // HTTP: the backend's answers
        LocalHistogram queue_wait_seconds;
        LocalGauge queued;
        CountersBy<Admission, kAdmissionCount> admission_refusals;
    };
    struct ListenerCell {
        LocalCounter accepted;
        LocalGauge connections;
        LocalHistogram header_seconds;
        LocalCounter rate_limited;
        CountersBy<tls::TlsFailure, kTlsResultCount> tls_handshakes;  // None = ok
        LocalHistogram tls_handshake_seconds;
        HttpCounters http_responses;  // HTTP listeners
        LocalGauge websockets;                                  // HTTP: upgraded and relaying
    };
    using SessionKey = std::tuple<std::string, std::string, std::string>;  // listener, route, backend

    SessionCell* session(std::string_view listener, std::string_view route, std::string_view backend);
    BackendCell* backend(std::string_view name);
    ListenerCell* listener(std::string_view name);
    void ended(session::EndReason r) { ends_[r].add(); }
    void stream_error(routing::StreamCondition c) { errors_[c].add(); }

    // Scraper side: calls f(sessions, backends, listeners, ends, errors) under the lock.
    template <typename F>
    void visit(F&& f) const {
        std::lock_guard<std::mutex> g(mu_);
        f(sessions_, backends_, listeners_, ends_, errors_);
    }

private:
    mutable std::mutex mu_;
    std::map<SessionKey, std::unique_ptr<SessionCell>> sessions_;
    std::map<std::string, std::unique_ptr<BackendCell>, std::less<>> backends_;
    std::map<std::string, std::unique_ptr<ListenerCell>, std::less<>> listeners_;
    CountersBy<session::EndReason, session::kEndReasonCount> ends_;
    CountersBy<routing::StreamCondition, kConditionCount> errors_;
};

}  // namespace xs::metrics
