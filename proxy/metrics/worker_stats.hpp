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

namespace xs::metrics {

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
        std::array<LocalCounter, 2> bytes;  // [0] to_backend, [1] to_client
        LocalHistogram connect_seconds;
        LocalCounter connect_failures;
        LocalHistogram queue_wait_seconds;
        LocalGauge queued;
        std::array<LocalCounter, kAdmissionCount> admission_refusals;
    };
    struct ListenerCell {
        LocalCounter accepted;
        LocalGauge connections;
        LocalHistogram header_seconds;
        LocalCounter rate_limited;
        std::array<LocalCounter, kTlsResultCount> tls_handshakes;  // by tls::TlsFailure; 0 = ok
        LocalHistogram tls_handshake_seconds;
    };
    using SessionKey = std::tuple<std::string, std::string, std::string>;  // listener, route, backend

    SessionCell* session(std::string_view listener, std::string_view route, std::string_view backend);
    BackendCell* backend(std::string_view name);
    ListenerCell* listener(std::string_view name);
    void ended(session::EndReason r) { ends_[static_cast<std::size_t>(r)].add(); }
    void stream_error(routing::StreamCondition c) { errors_[static_cast<std::size_t>(c)].add(); }

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
    std::array<LocalCounter, session::kEndReasonCount> ends_;
    std::array<LocalCounter, kConditionCount> errors_;
};

}  // namespace xs::metrics
