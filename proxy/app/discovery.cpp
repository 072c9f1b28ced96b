#include "app/discovery.hpp"

#include <algorithm>
#include <chrono>
#include <set>
#include <sstream>

#include "config/values.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"

namespace xs::app {
namespace {

using util::unix_now;

bool same(const config::Member& a, const config::Member& b) {
    return a.name == b.name && a.address_text == b.address_text && a.priority == b.priority &&
           a.weight == b.weight;
}

std::string describe(const std::vector<config::Member>& ms) {
    std::ostringstream os;
    for (std::size_t i = 0; i < ms.size(); ++i)
        os << (i ? ", " : "") << ms[i].name << " (" << ms[i].address_text << ")";
    return os.str();
}

}  // namespace

struct Discovery::Group {
    std::string name, srv;
    config::Millis min{}, max{}, backoff{};
    uv_timer_t* timer = nullptr;
    bool answered = false;
    bool in_flight = false;
    double last_success = 0;
    uint64_t successes = 0, failures = 0;
    Discovery* owner = nullptr;
};

void Discovery::sync(const config::Config& base) {
    std::vector<std::string> servers;
    for (const auto& r : base.proxy.resolvers)
        if (auto item = config::resolver_csv_item(r, nullptr)) servers.push_back(*item);
    bool new_resolver = !started_ || servers != servers_;
    if (new_resolver && config::has_discovery(base)) {
        if (resolver_) resolver_->close();  // its pending lookups end without an answer
        resolver_ = upstream::SrvResolver::create(loop_, servers, &resolver_error_);
        if (!resolver_) log::error("discovery: ", resolver_error_);
        servers_ = servers;
        started_ = true;
        for (auto& [name, g] : groups_) g->in_flight = false;
    }
    std::set<std::string> keep;
    for (const auto& b : base.backends) {
        if (b.srv.empty()) continue;
        keep.insert(b.name);
        auto& g = groups_[b.name];
        if (g && g->srv != b.srv) {
            stop(*g);
            members_.erase(b.name);
            g.reset();
        }
        bool fresh = !g;
        if (fresh) {
            g = std::make_shared<Group>();
            g->name = b.name;
            g->srv = b.srv;
            g->owner = this;
            g->timer = new uv_timer_t;
            uv_timer_init(loop_, g->timer);
            g->timer->data = g.get();
            log::info("discovery: backend ", b.name, " follows SRV ", b.srv);
        }
        g->min = b.srv_min_interval;
        g->max = b.srv_max_interval;
        g->backoff = g->min;
        if (fresh || (new_resolver && !g->in_flight)) lookup(g);
    }
    for (auto it = groups_.begin(); it != groups_.end();) {
        if (keep.count(it->first)) {
            ++it;
            continue;
        }
        stop(*it->second);
        members_.erase(it->first);
        it = groups_.erase(it);
    }
}

bool Discovery::settled() const {
    return std::all_of(groups_.begin(), groups_.end(), [](const auto& kv) { return kv.second->answered; });
}

std::vector<metrics::DiscoveryStatus> Discovery::status() const {
    std::vector<metrics::DiscoveryStatus> out;
    for (const auto& [name, g] : groups_) {
        auto it = members_.find(name);
        out.push_back({name, g->srv, it == members_.end() ? 0 : it->second.size(), g->last_success,
                       g->successes, g->failures});
    }
    return out;
}

void Discovery::close() {
    if (resolver_) resolver_->close();
    resolver_ = nullptr;
    for (auto& [name, g] : groups_) stop(*g);
    groups_.clear();
}

void Discovery::stop(Group& g) {
    if (!g.timer) return;
    g.timer->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(g.timer), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    g.timer = nullptr;
}

void Discovery::schedule(Group& g, config::Millis after) {
    uv_timer_start(g.timer, [](uv_timer_t* t) {
        auto* grp = static_cast<Group*>(t->data);
        if (!grp) return;
        auto it = grp->owner->groups_.find(grp->name);
        if (it != grp->owner->groups_.end() && it->second.get() == grp) grp->owner->lookup(it->second);
    }, static_cast<uint64_t>(after.count()), 0);
}

void Discovery::lookup(const std::shared_ptr<Group>& g) {
    if (!resolver_) {
        upstream::SrvAnswer a;
        a.error = resolver_error_;
        answered(*g, std::move(a));
        return;
    }
    g->in_flight = true;
    std::weak_ptr<Group> w = g;
    resolver_->resolve(g->srv, [this, w](upstream::SrvAnswer a) {
        if (auto grp = w.lock()) answered(*grp, std::move(a));
    });
}

void Discovery::answered(Group& g, upstream::SrvAnswer a) {
    g.in_flight = false;
    g.answered = true;
    std::vector<config::Member>& current = members_[g.name];
    std::vector<config::Member> next;
    if (a.ok) {
        std::vector<config::SrvRecord> records;
        for (const auto& t : a.targets) records.push_back(t.record);
        auto names = config::member_names(records);
        for (std::size_t i = 0; i < a.targets.size(); ++i) {
            const auto& t = a.targets[i];
            if (t.addresses.empty()) {
                // A target that did not resolve this time keeps its last address, if it had one.
                auto old = std::find_if(current.begin(), current.end(), [&](const auto& m) { return m.name == names[i]; });
                log::warn("discovery: backend ", g.name, ": SRV target ", t.record.target, ": ", t.error,
                          old == current.end() ? "; left out" : "; keeping its last address");
                if (old != current.end()) next.push_back(*old);
                continue;
            }
            config::Member m{names[i], t.addresses.front().to_string(), t.addresses.front(),
                             t.record.priority, t.record.weight};
            next.push_back(std::move(m));
        }
    }
    if (next.empty()) {
        ++g.failures;
        log::error("discovery: backend ", g.name, ": SRV ", g.srv, ": ",
                   a.ok ? "no target has an address" : a.error, "; keeping the last set (",
                   current.size(), " member(s)", g.last_success > 0 ? ", " + std::to_string(int(unix_now() - g.last_success)) + " s old" : "",
                   "), retry in ", g.backoff.count(), " ms");
        if (current.empty()) members_.erase(g.name);
        schedule(g, g.backoff);
        g.backoff = std::min(g.backoff * 2, g.max);
        return;
    }
    ++g.successes;
    g.last_success = unix_now();
    g.backoff = g.min;
    std::sort(next.begin(), next.end(), [](const auto& x, const auto& y) { return x.name < y.name; });
    bool changed = next.size() != current.size() || !std::equal(next.begin(), next.end(), current.begin(), same);
    auto ttl = config::Millis(static_cast<int64_t>(a.ttl) * 1000);
    auto after = std::clamp(ttl, g.min, g.max);
    if (changed) {
        log::info("discovery: backend ", g.name, ": SRV ", g.srv, ": ", next.size(), " member(s): ",
                  describe(next), "; next lookup in ", after.count(), " ms");
        current = std::move(next);
        changed_();
    }
    schedule(g, after);
}

}  // namespace xs::app
