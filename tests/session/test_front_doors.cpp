// Each front door fed every split of real first bytes: the verdict must not depend on how the
// bytes arrive.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "fake_host.hpp"
#include "session/front_door.hpp"

using namespace xs;
using namespace xs::session;
using namespace xs::test;

namespace {

const char* kToml =
    "[[listener]]\nname = \"c2s\"\nbind = \"127.0.0.1:0\"\n"
    "[[backend]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\n"
    "[[route]]\ndomains = [\"meet.example.com\"]\nbackends = [\"a\"]\n";

// A copy of the config's listener as another kind (a terminating listener would need
// certificates to load; the doors never touch them).
config::ListenerConfig as_kind(const config::Config& cfg, config::TlsMode tls, bool direct) {
    config::ListenerConfig l = cfg.listeners[0];
    l.tls = tls;
    l.direct_tls = direct;
    return l;
}

// The first bytes real clients send (slixmpp; go-xmpp, which ends <starttls/> with a newline).
const std::string kSlixmpp =
    "<stream:stream to='meet.example.com' xmlns:stream='http://etherx.jabber.org/streams' "
    "xmlns='jabber:client' xml:lang='en' version='1.0'>";
const std::string kGoXmpp =
    "<?xml version='1.0'?><stream:stream from='alice@meet.example.com' to='meet.example.com' "
    "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>\n";
const std::string kStartTls = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\n";

std::string file(const std::string& rel) {
    std::ifstream f(std::string(XS_SOURCE_DIR) + "/" + rel, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// Feeds `in` cut at `cut` (and bytewise when cut is 0); returns the last verdict that was not
// NeedMore, with every reply concatenated.
Verdict feed_cut(FrontDoor& d, const std::string& in, std::size_t cut, std::string& replies) {
    Verdict last;
    auto take = [&](std::string_view part) {
        if (part.empty() || last.step != Step::NeedMore) return;
        Verdict v = d.feed(part);
        replies += v.reply;
        if (v.step != Step::NeedMore) last = std::move(v);
    };
    if (cut == 0) {
        for (char c : in) take(std::string_view(&c, 1));
    } else {
        take(std::string_view(in).substr(0, cut));
        take(std::string_view(in).substr(cut));
    }
    return last;
}

}  // namespace

TEST_CASE("plain XMPP door: route on the header in every split, replaying every byte", "[doors]") {
    FakeHost host;
    auto snap = snapshot_from(kToml);
    DoorContext ctx{*snap->cfg, snap->cfg->listeners[0], host, "127.0.0.1"};
    for (const std::string& in : {kSlixmpp, kGoXmpp}) {
        for (std::size_t cut = 0; cut < in.size(); ++cut) {
            auto door = make_front_door(ctx);
            REQUIRE(door->name() == "xmpp");
            std::string replies;
            Verdict v = feed_cut(*door, in, cut, replies);
            INFO("cut " << cut);
            REQUIRE(v.step == Step::Route);
            CHECK(v.key.match == "meet.example.com");
            CHECK(v.replay == in.substr(0, v.replay.size()));
            CHECK(v.replay.size() >= in.size() - (in.back() == '\n' ? 1 : 0));
            CHECK(replies.empty());
        }
    }
    auto door = make_front_door(ctx);
    Verdict hello = door->feed(std::string("\x16\x03\x01\x02\x00", 5));
    CHECK(hello.step == Step::Close);
    CHECK(hello.close_reason == EndReason::NotXmpp);
    auto bad = make_front_door(ctx);
    Verdict ns = bad->feed("<stream:stream to='meet.example.com' xmlns='jabber:server' "
                           "xmlns:stream='http://etherx.jabber.org/streams'>");
    CHECK(ns.step == Step::Refuse);
    CHECK(ns.condition == routing::StreamCondition::InvalidNamespace);
    CHECK(bad->refusal(ns.condition, "", ns.detail).find("<invalid-namespace") != std::string::npos);
}

TEST_CASE("STARTTLS door: offer, <proceed/> and StartTls in every split (go-xmpp's newline too)",
          "[doors]") {
    FakeHost host;
    auto snap = snapshot_from(kToml);
    auto listener = as_kind(*snap->cfg, config::TlsMode::Terminate, false);
    DoorContext ctx{*snap->cfg, listener, host, "127.0.0.1"};
    for (const std::string& header : {kSlixmpp, kGoXmpp}) {
        std::string in = header + kStartTls;
        for (std::size_t cut = 0; cut < in.size(); ++cut) {
            auto door = make_front_door(ctx);
            REQUIRE(door->name() == "starttls");
            std::string replies;
            Verdict v = feed_cut(*door, in, cut, replies);
            INFO("cut " << cut);
            REQUIRE(v.step == Step::StartTls);
            CHECK(v.sni_fallback == "meet.example.com");
            CHECK(replies.find("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>") != std::string::npos);
            CHECK(replies.size() >= 50);
            CHECK(replies.substr(replies.size() - 50) == "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
            // Whitespace arriving after <proceed/> is not TLS; the first TLS byte passes.
            CHECK(door->before_tls("\n").empty());
            CHECK(door->before_tls("\x16\x03") == "\x16\x03");
            CHECK(door->refusal(routing::StreamCondition::PolicyViolation, "", "x").empty());  // mid-handshake
            REQUIRE(door->tls_ready("").step == Step::NeedMore);
            CHECK(make_front_door(ctx)->tls_ready("http/1.1").step == Step::Close);
            std::string inner_replies;
            Verdict r = feed_cut(*door, kSlixmpp, cut % kSlixmpp.size(), inner_replies);
            REQUIRE(r.step == Step::Route);
            CHECK(r.replay == kSlixmpp);  // the backend sees only the stream restarted inside TLS
        }
    }
    auto door = make_front_door(ctx);
    std::string other = kSlixmpp;
    other.replace(other.find("meet.example.com"), 16, "elsewhere.example");
    Verdict v = door->feed(other);
    CHECK(v.step == Step::Refuse);
    CHECK(v.condition == routing::StreamCondition::HostUnknown);
    std::string plain = door->refusal(v.condition, v.domain, v.detail);  // plaintext, with a header
    CHECK(plain.find("<stream:stream") != std::string::npos);
    CHECK(plain.find("<host-unknown") != std::string::npos);
    auto early = make_front_door(ctx);
    Verdict e = early->feed(kSlixmpp + "<auth/>");
    CHECK(e.step == Step::Refuse);
    CHECK(e.reply.find("<starttls") != std::string::npos);  // the offer went out first
    CHECK(early->refusal(e.condition, e.domain, e.detail).find("<stream:stream") == std::string::npos);
}

TEST_CASE("SNI door: route on a real ClientHello in every split; no words on refusal", "[doors]") {
    FakeHost host;
    auto snap = snapshot_from(kToml);
    auto listener = as_kind(*snap->cfg, config::TlsMode::Passthrough, true);
    DoorContext ctx{*snap->cfg, listener, host, "127.0.0.1"};
    std::string hello = file("tests/fuzz/corpus/fuzz_client_hello/tls13-sni-alpn.bin");
    REQUIRE(hello.size() > 100);
    for (std::size_t cut = 0; cut < hello.size(); cut += (cut < 64 ? 1 : 37)) {
        auto door = make_front_door(ctx);
        REQUIRE(door->name() == "sni");
        std::string replies;
        Verdict v = feed_cut(*door, hello, cut, replies);
        INFO("cut " << cut);
        REQUIRE(v.step == Step::Route);
        CHECK(v.key.match == "meet.example.com");
        CHECK(v.replay == hello.substr(0, v.replay.size()));
        CHECK(door->refusal(routing::StreamCondition::HostUnknown, "", "").empty());
    }
    auto door = make_front_door(ctx);
    CHECK(door->feed(kSlixmpp).step == Step::Close);
}
