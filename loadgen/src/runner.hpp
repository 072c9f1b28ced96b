// One run of a scenario: creates the clients, paces their connections, drives the phases from
// a 5 ms tick, collects the measurements into a Report.
//
//   join-storm  login all participants -> all join at once -> stay, send messages -> leave
//   brewery     focus joins -> K bridges join -> stats presences every interval for duration
//   jitsi       brewery first; once it is steady, the join storm on the client domain(s)
//   jitsi-web   jitsi with the participants over WebSocket/BOSH (options.cpp sets it up)
//   steady      log in N sessions (optionally join rooms) -> warmup -> messages at a fixed
//               rate for duration (rate 0: idle sessions held for duration)
//   churn       for duration, keep `concurrency` sessions being set up and torn down
//
// runner.cpp has the common machinery, muc.cpp the MUC scenarios, steady.cpp steady and churn.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "client.hpp"
#include "core/options.hpp"
#include "core/report.hpp"
#include "tls.hpp"
#include "watch.hpp"

namespace xs::loadgen {

enum class Role : std::uint8_t { Participant, Bridge, Focus, Session };

struct Actor {
    Role role = Role::Participant;
    int room = -1;
    std::string room_jid;      // bare room JID
    std::string nick;
    std::uint64_t join_sent_us = 0;
    bool ready = false, failed = false, closed = false;
    bool joined = false, join_done = false;
    std::uint32_t msg_seq = 0;
    std::vector<std::pair<std::uint32_t, std::uint64_t>> inflight;  // message id -> sent at
    std::uint64_t next_presence_us = 0;                             // bridges
    std::uint64_t presence_seq = 0;
};

class Runner : public ClientOwner {
public:
    explicit Runner(const Options& o);
    ~Runner() override;
    // Runs the scenario to the end (or --max-time). Returns false on a setup error (`error()`).
    bool run();
    const std::string& error() const { return error_; }
    Report& report() { return report_; }
    const std::vector<chart::Marker>& markers() const { return markers_; }
    Watcher* watcher() { return watcher_.get(); }

    void on_ready(Client& c) override;
    void on_failed(Client& c, const std::string& kind, const std::string& detail) override;
    void on_stanza(Client& c, xml::Element& st) override;
    void on_closed(Client& c) override;

private:
    enum class Phase {
        Start, BreweryFocus, BreweryBridges, BrewerySteady,
        Login, Join, Warmup, Stay, Drain, Leave, Done
    };

    // runner.cpp
    bool resolve(const std::string& hostport, sockaddr_storage& out);
    std::size_t add_client(Role role, LoginSpec spec);
    // The transport of participant/session number `n` (--transport, or its turn in
    // --transport-mix) for `domain`; `room` (the room's node, empty outside rooms) goes into
    // the WebSocket or BOSH request's query.
    TransportSpec client_transport(std::size_t n, const std::string& domain, const std::string& room) const;
    void enqueue(std::size_t first, std::size_t count);
    void pace();
    static void on_tick(uv_timer_t* t);
    void tick();
    void phase(Phase p, const char* name);
    double since_start(std::uint64_t us) const { return static_cast<double>(us - t0_us_) / 1e6; }
    double elapsed() const { return since_start(now_us()); }
    std::uint64_t since_phase(std::uint64_t now) const { return now > phase_at_us_ ? now - phase_at_us_ : 0; }
    bool queue_settled() const;  // every queued client started and either ready or failed
    void leave_all();
    void finish();
    void record_error(const std::string& kind, const std::string& detail);
    void send_message(std::size_t i);
    void message_echo(Actor& a, std::string_view id);
    void count_unanswered();

    // muc.cpp
    void setup_muc();
    void tick_muc(std::uint64_t now);
    void muc_stanza(std::size_t i, Actor& a, xml::Element& st);
    void send_join(std::size_t i);
    void start_storm_login();
    void check_join_timeouts(std::uint64_t now);
    void schedule_messages(std::uint64_t now);
    void run_schedule(std::uint64_t now);
    bool joins_settled(std::size_t first, std::size_t n) const;
    void send_bridge_presence(std::size_t i, std::uint64_t now);

    // steady.cpp
    void setup_steady();
    void tick_steady(std::uint64_t now);
    void tick_churn(std::uint64_t now);

    Options o_;
    Report report_;
    std::string error_;
    uv_loop_t loop_{};
    uv_timer_t tick_{};
    Env env_;
    std::unique_ptr<TlsContext> tls_;
    std::unique_ptr<Watcher> watcher_;
    std::vector<std::unique_ptr<Client>> clients_;
    std::vector<Actor> actors_;
    std::mt19937_64 rng_;
    std::vector<TransportKind> transport_cycle_;
    bool jitsi_ = false;  // jitsi or jitsi-web
    std::string prefix_;

    std::uint64_t t0_us_ = 0;
    Phase phase_ = Phase::Start;
    std::uint64_t phase_at_us_ = 0;
    std::vector<chart::Marker> markers_;

    // pacing of connection set-up
    std::vector<std::size_t> queue_;
    std::size_t queue_pos_ = 0;
    std::size_t in_setup_ = 0;
    std::uint64_t pace_start_us_ = 0;
    std::size_t paced_ = 0;
    std::size_t settled_ = 0;    // queued clients now ready or failed

    // roles
    std::size_t focus_ = SIZE_MAX;
    std::size_t bridges_first_ = 0, bridges_n_ = 0;
    std::size_t parts_first_ = 0, parts_n_ = 0;
    bool brewery_ = false, storm_ = false;

    // join-storm bookkeeping
    std::uint64_t storm_start_us_ = 0, last_join_us_ = 0;
    std::size_t joins_pending_ = 0;
    std::uint64_t last_timeout_check_us_ = 0;
    struct Due {
        std::uint64_t at_us;
        std::size_t client;
        bool join;  // else a message
        bool operator<(const Due& o) const { return at_us < o.at_us; }
    };
    std::vector<Due> schedule_;  // sorted by time
    std::size_t schedule_pos_ = 0;
    bool brewery_running_ = false;
    std::uint64_t last_tick_us_ = 0;
    std::uint64_t login_first_us_ = 0, login_last_us_ = 0;

    // steady / churn
    std::uint64_t window_start_us_ = 0, window_end_us_ = 0;
    double msg_budget_ = 0;
    std::size_t rr_ = 0;
    bool measuring_ = false;
    bool churn_stop_ = false;
    std::size_t open_clients_ = 0;  // started and not yet closed
};

}  // namespace xs::loadgen
