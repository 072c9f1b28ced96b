#include "metrics/worker_stats.hpp"

namespace xs::metrics {

std::string_view to_string(Admission a) {
    switch (a) {
        case Admission::QueueFull: return "queue_full";
        case Admission::QueueTimeout: return "queue_timeout";
        case Admission::MaxSessions: return "max_sessions";
    }
    return "?";
}

WorkerStats::SessionCell* WorkerStats::session(std::string_view listener, std::string_view route,
                                               std::string_view backend) {
    SessionKey key{std::string(listener), std::string(route), std::string(backend)};
    std::lock_guard<std::mutex> g(mu_);
    auto& cell = sessions_[key];
    if (!cell) cell = std::make_unique<SessionCell>();
    return cell.get();
}

WorkerStats::BackendCell* WorkerStats::backend(std::string_view name) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = backends_.find(name);
    if (it == backends_.end())
        it = backends_.emplace(std::string(name), std::make_unique<BackendCell>()).first;
    return it->second.get();
}

WorkerStats::ListenerCell* WorkerStats::listener(std::string_view name) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = listeners_.find(name);
    if (it == listeners_.end())
        it = listeners_.emplace(std::string(name), std::make_unique<ListenerCell>()).first;
    return it->second.get();
}

}  // namespace xs::metrics
