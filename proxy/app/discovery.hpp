// DNS SRV discovery of backend groups (`srv` backends), on the daemon's loop: each group is
// resolved at start, then again when its records' TTL runs out (bounded by srv_min_interval
// and srv_max_interval); a changed answer calls `changed`, and the daemon rebuilds the
// configuration the workers see (config::expand_discovered). A failed or empty answer keeps
// the last good set (logged, counted); retries back off from srv_min_interval to
// srv_max_interval. Daemon thread only.
#pragma once
#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/discovered.hpp"
#include "metrics/exposition.hpp"
#include "upstream/srv_resolver.hpp"

namespace xs::app {

class Discovery {
public:
    using Changed = std::function<void()>;
    Discovery(uv_loop_t* loop, Changed changed) : loop_(loop), changed_(std::move(changed)) {}
    ~Discovery() { close(); }
    Discovery(const Discovery&) = delete;
    Discovery& operator=(const Discovery&) = delete;

    // Follows `base`'s groups: new ones are resolved now, unchanged ones (same name and SRV
    // name) keep their members and schedule, removed ones stop. A changed `resolvers` list
    // starts a new resolver and resolves every group again.
    void sync(const config::Config& base);
    // The members of every group that has had a good answer.
    const config::Discovered& members() const { return members_; }
    // Every group has had its first answer or failure.
    bool settled() const;
    std::vector<metrics::DiscoveryStatus> status() const;
    void close();

private:
    struct Group;
    void lookup(const std::shared_ptr<Group>& g);
    void answered(Group& g, upstream::SrvAnswer a);
    void schedule(Group& g, config::Millis after);
    void stop(Group& g);

    uv_loop_t* loop_;
    Changed changed_;
    upstream::SrvResolver* resolver_ = nullptr;
    std::string resolver_error_;
    std::vector<std::string> servers_;
    bool started_ = false;
    std::map<std::string, std::shared_ptr<Group>> groups_;
    config::Discovered members_;
};

}  // namespace xs::app
