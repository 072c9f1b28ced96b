// steady (a fixed message rate through established sessions; rate 0 holds idle sessions) and
// churn (sessions set up and torn down as fast as the concurrency allows).
#include <algorithm>
#include <cctype>

#include "core/stanzas.hpp"
#include "runner.hpp"

namespace xs::loadgen {

void Runner::setup_steady() {
    sockaddr_storage server;
    if (!resolve(o_.server, server)) return;
    bool churn = o_.scenario == "churn";
    std::size_t n = static_cast<std::size_t>(churn ? std::min(o_.clients, o_.concurrency) : o_.clients);
    parts_first_ = 0;
    parts_n_ = n;
    for (std::size_t i = 0; i < n; ++i) {
        std::size_t r = o_.to_room ? i / static_cast<std::size_t>(o_.room_size) : i;
        const std::string& domain = o_.domains[r % o_.domains.size()];
        LoginSpec s;
        s.server = server;
        s.domain = domain;
        s.auth = o_.auth;
        s.user = o_.user.empty() ? "" : stanzas::expand(o_.user, "i", std::to_string(i));
        s.password = o_.password;
        s.resource = "lg" + std::to_string(i);
        std::string node;
        if (!churn && o_.to_room) {
            node = prefix_ + "-" + std::to_string(r);
            for (char& ch : node) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        }
        s.transport = client_transport(i, domain, node);
        std::size_t k = add_client(Role::Session, s);
        if (!churn && o_.to_room) {
            Actor& a = actors_[k];
            std::string room = prefix_ + "-" + std::to_string(r) + "@" + stanzas::expand(o_.muc, "domain", domain);
            for (char& ch : room) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            a.room_jid = room;
            a.nick = "s" + std::to_string(i);
        }
    }
    phase(Phase::Login, churn ? "churn" : "login");
    enqueue(0, n);
    if (churn) {
        window_start_us_ = now_us();
        watcher_->mark_window_start();
    }
}

void Runner::tick_steady(std::uint64_t now) {
    check_join_timeouts(now);
    switch (phase_) {
        case Phase::Login:
            if (!queue_settled()) return;
            if (o_.to_room) {
                phase(Phase::Join, "join");
                joins_pending_ = 0;
                for (std::size_t i = 0; i < parts_n_; ++i)
                    if (actors_[i].join_sent_us && !actors_[i].join_done) ++joins_pending_;
                return;
            }
            phase(Phase::Warmup, "warmup");
            return;
        case Phase::Join:
            if (joins_pending_ > 0) return;
            phase(Phase::Warmup, "warmup");
            return;
        case Phase::Warmup:
        case Phase::Stay: {
            if (phase_ == Phase::Warmup && since_phase(now) >= static_cast<std::uint64_t>(o_.warmup * 1e6)) {
                phase(Phase::Stay, "measure");
                window_start_us_ = now;
                msg_budget_ = 0;
                watcher_->mark_window_start();
                std::uint64_t ready = 0;
                for (std::size_t i = 0; i < parts_n_; ++i)
                    if (clients_[i]->state() == Client::State::Ready) ++ready;
                report_.counts.add("sessions_ready", ready);
            }
            if (phase_ == Phase::Stay && since_phase(now) >= static_cast<std::uint64_t>(o_.duration * 1e6)) {
                window_end_us_ = now;
                watcher_->mark_window_end();
                double secs = static_cast<double>(window_end_us_ - window_start_us_) / 1e6;
                if (secs > 0) {
                    report_.rates["messages_per_s"] =
                        static_cast<double>(report_.latency["message_rtt"].count()) / secs;
                }
                phase(Phase::Drain, "drain");
                return;
            }
            if (o_.rate <= 0 || parts_n_ == 0) return;
            msg_budget_ += o_.rate * static_cast<double>(now - last_tick_us_) / 1e6;
            std::size_t tries = 0;
            while (msg_budget_ >= 1 && tries < parts_n_) {
                std::size_t i = rr_++ % parts_n_;
                Actor& a = actors_[i];
                if (clients_[i]->state() != Client::State::Ready || (o_.to_room && !a.joined)) {
                    ++tries;
                    continue;
                }
                tries = 0;
                send_message(i);
                msg_budget_ -= 1;
            }
            if (msg_budget_ > o_.rate) msg_budget_ = o_.rate;  // nobody ready: do not bank a burst
            return;
        }
        case Phase::Drain: {
            bool pending = false;
            for (const Actor& a : actors_)
                if (!a.inflight.empty() && !a.failed) pending = true;
            if (!pending || since_phase(now) > static_cast<std::uint64_t>(o_.message_timeout * 1e6))
                leave_all();
            return;
        }
        default:
            return;
    }
}

void Runner::tick_churn(std::uint64_t now) {
    if (phase_ != Phase::Login) return;
    if (now - window_start_us_ < static_cast<std::uint64_t>(o_.duration * 1e6)) return;
    churn_stop_ = true;
    window_end_us_ = now;
    watcher_->mark_window_end();
    double secs = static_cast<double>(window_end_us_ - window_start_us_) / 1e6;
    report_.rates["sessions_per_s"] = static_cast<double>(report_.counts.get("sessions_completed")) / secs;
    queue_pos_ = queue_.size();
    phase(Phase::Drain, "stop");
    for (auto& c : clients_) {
        if (c->state() == Client::State::Ready) c->close_stream(2);
    }
    phase(Phase::Leave, "leave");
}

}  // namespace xs::loadgen
