// The MUC scenarios: join-storm, brewery and jitsi/jitsi-web (both at once).
#include <algorithm>
#include <cctype>

#include "core/stanzas.hpp"
#include "runner.hpp"

namespace xs::loadgen {

namespace {

std::string lower(std::string s) {
    for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
}

bool has_status(const xml::Element& presence, std::string_view code) {
    const xml::Element* x = presence.child("x", stanzas::kNsMucUser);
    if (!x) return false;
    for (const auto& ch : x->children)
        if (ch.local_name() == "status" && ch.attr_or("code") == code) return true;
    return false;
}

std::string error_condition(const xml::Element& st) {
    const xml::Element* e = st.child("error");
    if (!e) return "error";
    for (const auto& ch : e->children)
        if (ch.local_name() != "text") return std::string(ch.local_name());
    return "error";
}

}  // namespace

void Runner::setup_muc() {
    brewery_ = o_.scenario == "brewery" || jitsi_;
    storm_ = o_.scenario == "join-storm" || jitsi_;
    sockaddr_storage server, brewery_server;
    if (!resolve(o_.server, server) || !resolve(o_.brewery_server, brewery_server)) return;

    if (brewery_) {
        std::string muc = stanzas::expand(o_.brewery_muc, "domain", o_.brewery_domain);
        std::string room = lower(o_.brewery_room) + "@" + lower(muc);
        LoginSpec s;
        s.server = brewery_server;
        s.domain = o_.brewery_domain;
        s.auth = o_.brewery_auth;
        s.user = o_.focus_user;
        s.password = o_.focus_password;
        s.resource = "focus-" + prefix_;
        focus_ = add_client(Role::Focus, s);
        actors_[focus_].room_jid = room;
        actors_[focus_].nick = "focus-" + prefix_;
        bridges_first_ = clients_.size();
        bridges_n_ = static_cast<std::size_t>(o_.bridges);
        for (std::size_t k = 0; k < bridges_n_; ++k) {
            s.user = stanzas::expand(o_.bridge_user, "i", std::to_string(k));
            s.password = o_.bridge_password;
            s.resource = "jvb-" + std::to_string(k) + "-" + prefix_;
            std::size_t i = add_client(Role::Bridge, s);
            actors_[i].room_jid = room;
            actors_[i].nick = s.resource;
        }
    }
    if (storm_) {
        parts_first_ = clients_.size();
        parts_n_ = static_cast<std::size_t>(o_.rooms) * static_cast<std::size_t>(o_.room_size);
        for (std::size_t p = 0; p < parts_n_; ++p) {
            int r = static_cast<int>(p / static_cast<std::size_t>(o_.room_size));
            const std::string& domain = o_.domains[static_cast<std::size_t>(r) % o_.domains.size()];
            LoginSpec s;
            s.server = server;
            s.domain = domain;
            s.auth = o_.auth;
            s.user = o_.user.empty() ? "" : stanzas::expand(o_.user, "i", std::to_string(p));
            s.password = o_.password;
            s.resource = "lg" + std::to_string(p);
            std::string node = lower(prefix_ + "-" + std::to_string(r));
            s.transport = client_transport(p, domain, node);
            std::size_t i = add_client(Role::Participant, s);
            Actor& a = actors_[i];
            a.room = r;
            a.room_jid = node + "@" + lower(stanzas::expand(o_.muc, "domain", domain));
            a.nick = "p" + std::to_string(p);
        }
    }
    if (brewery_) {
        phase(Phase::BreweryFocus, "focus");
        enqueue(focus_, 1);
    } else {
        start_storm_login();
    }
}

void Runner::start_storm_login() {
    phase(Phase::Login, "login");
    login_first_us_ = 0;
    enqueue(parts_first_, parts_n_);
}

bool Runner::joins_settled(std::size_t first, std::size_t n) const {
    for (std::size_t i = first; i < first + n; ++i) {
        const Actor& a = actors_[i];
        if (!a.failed && !a.join_done) return false;
    }
    return true;
}

void Runner::send_join(std::size_t i) {
    Actor& a = actors_[i];
    Client& c = *clients_[i];
    if (c.state() != Client::State::Ready || a.join_sent_us) return;
    std::uint64_t now = now_us();
    a.join_sent_us = now;
    std::string to = a.room_jid + "/" + a.nick;
    switch (a.role) {
        case Role::Focus:
            c.send("<presence to='" + xml::escape(to) + "'><x xmlns='http://jabber.org/protocol/muc'/></presence>");
            break;
        case Role::Bridge:
            c.send(stanzas::bridge_presence(to, true, o_.stats_bytes, now, a.presence_seq++));
            report_.counts.add("bridge_presences_sent");
            break;
        default:
            c.send(stanzas::jitsi_join(to, a.nick, true, o_.presence_bytes, static_cast<std::uint32_t>(i)));
            break;
    }
}

void Runner::send_bridge_presence(std::size_t i, std::uint64_t now) {
    Actor& a = actors_[i];
    Client& c = *clients_[i];
    if (c.state() != Client::State::Ready || !a.joined) return;
    c.send(stanzas::bridge_presence(a.room_jid + "/" + a.nick, false, o_.stats_bytes, now, a.presence_seq++));
    report_.counts.add("bridge_presences_sent");
}

void Runner::check_join_timeouts(std::uint64_t now) {
    if (now - last_timeout_check_us_ < 100'000) return;
    last_timeout_check_us_ = now;
    auto limit = static_cast<std::uint64_t>(o_.join_timeout * 1e6);
    for (std::size_t i = 0; i < actors_.size(); ++i) {
        Actor& a = actors_[i];
        if (!a.join_sent_us || a.join_done || now - a.join_sent_us < limit) continue;
        a.join_done = true;
        if (a.role == Role::Participant || a.role == Role::Session) {
            if (joins_pending_) --joins_pending_;
        }
        record_error("join:timeout", "no status 110 within --join-timeout");
    }
}

void Runner::schedule_messages(std::uint64_t now) {
    std::uniform_real_distribution<double> when(0, std::max(0.0, o_.stay * 0.8) * 1e6);
    for (std::size_t i = parts_first_; i < parts_first_ + parts_n_; ++i) {
        if (!actors_[i].joined) continue;
        for (int k = 0; k < o_.messages; ++k)
            schedule_.push_back({now + static_cast<std::uint64_t>(when(rng_)), i, false});
    }
    std::sort(schedule_.begin() + static_cast<std::ptrdiff_t>(schedule_pos_), schedule_.end());
}

void Runner::run_schedule(std::uint64_t now) {
    while (schedule_pos_ < schedule_.size() && schedule_[schedule_pos_].at_us <= now) {
        const Due& d = schedule_[schedule_pos_++];
        if (d.join) send_join(d.client);
        else send_message(d.client);
    }
}

void Runner::tick_muc(std::uint64_t now) {
    if (brewery_running_) {
        auto step = static_cast<std::uint64_t>(o_.interval * 1e6);
        for (std::size_t i = bridges_first_; i < bridges_first_ + bridges_n_; ++i) {
            Actor& a = actors_[i];
            if (a.joined && a.next_presence_us && now >= a.next_presence_us) {
                send_bridge_presence(i, now);
                a.next_presence_us += step;
                if (a.next_presence_us < now) a.next_presence_us = now + step;
            }
        }
    }
    check_join_timeouts(now);
    run_schedule(now);
    switch (phase_) {
        case Phase::BreweryFocus:
            if (queue_settled() && joins_settled(focus_, 1)) {
                if (!actors_[focus_].joined) record_error("brewery:no-focus", "the focus did not join");
                phase(Phase::BreweryBridges, "bridges");
                enqueue(bridges_first_, bridges_n_);
            }
            return;
        case Phase::BreweryBridges:
            if (queue_settled() && joins_settled(bridges_first_, bridges_n_)) {
                std::uniform_real_distribution<double> offset(0, o_.interval * 1e6);
                for (std::size_t i = bridges_first_; i < bridges_first_ + bridges_n_; ++i)
                    actors_[i].next_presence_us = now + static_cast<std::uint64_t>(offset(rng_));
                brewery_running_ = true;
                phase(Phase::BrewerySteady, "brewery");
                if (storm_) {
                    start_storm_login();
                } else {
                    window_start_us_ = now;
                    watcher_->mark_window_start();
                }
            }
            return;
        case Phase::BrewerySteady:
            if (since_phase(now) >= static_cast<std::uint64_t>(o_.duration * 1e6)) {
                window_end_us_ = now;
                watcher_->mark_window_end();
                brewery_running_ = false;
                phase(Phase::Drain, "drain");
            }
            return;
        case Phase::Login:
            if (!queue_settled()) return;
            phase(Phase::Join, "storm");
            storm_start_us_ = window_start_us_ = now;
            watcher_->mark_window_start();
            joins_pending_ = 0;
            {
                std::uniform_real_distribution<double> spread(0, o_.join_spread * 1e6);
                for (std::size_t i = parts_first_; i < parts_first_ + parts_n_; ++i) {
                    if (clients_[i]->state() != Client::State::Ready) continue;
                    ++joins_pending_;
                    if (o_.join_spread > 0)
                        schedule_.push_back({now + static_cast<std::uint64_t>(spread(rng_)), i, true});
                    else send_join(i);
                }
                std::sort(schedule_.begin() + static_cast<std::ptrdiff_t>(schedule_pos_), schedule_.end());
            }
            return;
        case Phase::Join:
            if (joins_pending_ > 0) return;
            window_end_us_ = last_join_us_ ? last_join_us_ : now;
            watcher_->mark_window_end();
            {
                double storm_s = static_cast<double>(window_end_us_ - storm_start_us_) / 1e6;
                report_.rates["storm_s"] = storm_s;
                if (storm_s > 0)
                    report_.rates["joins_per_s"] =
                        static_cast<double>(report_.counts.get("participants_joined")) / storm_s;
            }
            phase(Phase::Stay, "stay");
            schedule_messages(now);
            return;
        case Phase::Stay:
            if (since_phase(now) >= static_cast<std::uint64_t>(o_.stay * 1e6) &&
                schedule_pos_ >= schedule_.size())
                phase(Phase::Drain, "drain");
            return;
        case Phase::Drain: {
            // No new bridge presences; give the last ones and the messages in flight time to
            // arrive (at least 200 ms, at most --message-timeout) before anyone leaves.
            brewery_running_ = false;
            bool pending = since_phase(now) < 200'000;
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

void Runner::muc_stanza(std::size_t, Actor& a, xml::Element& st) {
    std::string_view name = st.local_name();
    const std::string from(st.attr_or("from"));
    auto slash = from.find('/');
    std::string bare = lower(from.substr(0, slash));
    std::string res = slash == std::string::npos ? "" : from.substr(slash + 1);
    if (bare != a.room_jid) return;
    std::string_view type = st.attr_or("type");
    std::uint64_t now = now_us();
    if (name == "presence") {
        if (type == "error") {
            if (!a.join_done) {
                a.join_done = true;
                if ((a.role == Role::Participant || a.role == Role::Session) && joins_pending_) --joins_pending_;
                record_error("join:" + error_condition(st), "join refused by " + from);
            } else {
                record_error("presence:" + error_condition(st), "presence error from " + from);
            }
            return;
        }
        if (res == a.nick) {
            if (!a.joined && type != "unavailable" && has_status(st, "110")) {
                a.joined = a.join_done = true;
                std::uint64_t took = now - a.join_sent_us;
                switch (a.role) {
                    case Role::Participant:
                        report_.latency["join"].add_us(took);
                        report_.counts.add("participants_joined");
                        if (joins_pending_) --joins_pending_;
                        last_join_us_ = now;
                        break;
                    case Role::Session:
                        report_.latency["join"].add_us(took);
                        report_.counts.add("sessions_joined");
                        if (joins_pending_) --joins_pending_;
                        break;
                    case Role::Bridge:
                        report_.latency["brewery_join"].add_us(took);
                        report_.counts.add("bridges_joined");
                        break;
                    case Role::Focus:
                        report_.latency["brewery_join"].add_us(took);
                        report_.counts.add("focus_joined");
                        break;
                }
            }
            return;
        }
        if (type == "unavailable") return;
        switch (a.role) {
            case Role::Focus:
                if (auto stamp = stanzas::read_bridge_stamp(st)) {
                    report_.counts.add("bridge_presences_delivered");
                    if (now >= stamp->sent_us) report_.latency["brewery_delivery"].add_us(now - stamp->sent_us);
                }
                return;
            case Role::Bridge:
                report_.counts.add("brewery_presences_in");
                return;
            default:
                report_.counts.add("occupant_presences_in");
                return;
        }
    }
    if (name == "message" && type == "groupchat") {
        if (res.empty()) return;  // the room's subject
        if (res == a.nick) return message_echo(a, st.attr_or("id"));
        report_.counts.add("groupchat_in");
    }
}

}  // namespace xs::loadgen
