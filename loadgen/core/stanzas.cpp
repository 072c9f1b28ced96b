#include "stanzas.hpp"

#include <cstdio>

#include "sasl.hpp"

namespace xs::loadgen::stanzas {

using xml::escape;

namespace {

// A cheap deterministic generator for payload filler (xorshift32).
std::uint32_t next_rand(std::uint32_t& s) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    return s;
}

std::string num(std::uint64_t v) { return std::to_string(v); }

std::string fixed2(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    return buf;
}

}  // namespace

std::string stream_header(std::string_view domain) {
    std::string s =
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams' to='";
    s += escape(domain);
    s += "' version='1.0'>";
    return s;
}

std::string starttls() { return "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"; }

std::string sasl_auth(std::string_view mechanism, std::string_view initial) {
    std::string s = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='";
    s += escape(mechanism);
    s += "'>";
    s += initial.empty() ? std::string("=") : sasl::base64_encode(initial);
    s += "</auth>";
    return s;
}

std::string sasl_response(std::string_view raw) {
    return "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + sasl::base64_encode(raw) +
           "</response>";
}

std::string bind(std::string_view id, std::string_view resource) {
    std::string s = "<iq type='set' id='" + escape(id) +
                    "'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>";
    if (!resource.empty()) s += "<resource>" + escape(resource) + "</resource>";
    return s + "</bind></iq>";
}

std::string session(std::string_view id) {
    return "<iq type='set' id='" + escape(id) +
           "'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>";
}

std::string jitsi_join(std::string_view to, std::string_view nick, bool join,
                       std::size_t target_bytes, std::uint32_t seed) {
    std::uint32_t r = seed * 2654435761u + 1;
    std::string s = "<presence to='" + escape(to) + "'>";
    if (join) s += "<x xmlns='http://jabber.org/protocol/muc'/>";
    std::string id = escape(nick);
    s += "<stats-id>" + id + "-" + num(next_rand(r) % 100000) + "</stats-id>";
    s += "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' "
         "node='https://jitsi.org/jitsi-meet' ver='cvjWXufsg4xT62Ec2mlATkFZ9lk='/>";
    s += "<jitsi_participant_region>region1</jitsi_participant_region>";
    s += "<jitsi_participant_codecList>av1,vp9,vp8,h264</jitsi_participant_codecList>";
    s += "<audiomuted xmlns='http://jitsi.org/jitmeet/audio'>true</audiomuted>";
    s += "<videomuted xmlns='http://jitsi.org/jitmeet/video'>true</videomuted>";
    s += "<SourceInfo>{\"" + id + "-a0\":{\"muted\":true},\"" + id +
         "-v0\":{\"muted\":true,\"videoType\":\"camera\"}}</SourceInfo>";
    s += "<nick xmlns='http://jabber.org/protocol/nick'>" + id + "</nick>";
    s += "<features><feature var='https://jitsi.org/meet/e2ee'/></features>";
    // The stats payload: connection-quality figures as JSON, padded to the target size.
    const std::string tail = "</stats></presence>";
    s += "<stats xmlns='http://jitsi.org/jitmeet/stats'>{\"bitrate\":{\"upload\":" +
         num(next_rand(r) % 4000) + ",\"download\":" + num(next_rand(r) % 4000) +
         "},\"packetLoss\":{\"total\":" + num(next_rand(r) % 10) + "},\"jvbRTT\":" +
         num(next_rand(r) % 200) + ",\"resolution\":{\"ssrc" + num(next_rand(r)) +
         "\":{\"height\":720,\"width\":1280}},\"pad\":\"";
    static constexpr char kPad[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    while (s.size() + tail.size() + 2 < target_bytes) s += kPad[next_rand(r) % 36];
    s += "\"}";
    s += tail;
    return s;
}

std::string leave(std::string_view to) {
    return "<presence to='" + escape(to) + "' type='unavailable'/>";
}

std::string bridge_presence(std::string_view to, bool join, std::size_t target_bytes,
                            std::uint64_t sent_us, std::uint64_t seq) {
    std::uint32_t r = static_cast<std::uint32_t>(seq * 2246822519u + sent_us) | 1u;
    std::string s = "<presence to='" + escape(to) + "'>";
    if (join) s += "<x xmlns='http://jabber.org/protocol/muc'/>";
    s += "<stats xmlns='http://jitsi.org/protocol/colibri'>";
    auto stat = [&](std::string_view name, const std::string& value) {
        s += "<stat name='";
        s += name;
        s += "' value='" + value + "'/>";
    };
    stat("loadgen_ts", num(sent_us));
    stat("loadgen_seq", num(seq));
    stat("stress_level", fixed2((next_rand(r) % 100) / 100.0));
    stat("conferences", num(next_rand(r) % 50));
    stat("participants", num(next_rand(r) % 500));
    stat("largest_conference", num(next_rand(r) % 100));
    stat("endpoints_sending_audio", num(next_rand(r) % 100));
    stat("endpoints_sending_video", num(next_rand(r) % 100));
    stat("bit_rate_download", num(next_rand(r) % 100000));
    stat("bit_rate_upload", num(next_rand(r) % 100000));
    stat("packet_rate_download", num(next_rand(r) % 10000));
    stat("packet_rate_upload", num(next_rand(r) % 10000));
    stat("rtt_aggregate", fixed2((next_rand(r) % 10000) / 100.0));
    stat("region", "region1");
    stat("relay_id", "jvb-" + num(seq % 7));
    stat("version", "2.3.61-g814bffd6");
    stat("drain", "false");
    stat("graceful_shutdown", "false");
    const std::string tail = "</stats></presence>";
    // Filler: more per-conference stats, as a loaded bridge reports them.
    for (unsigned k = 0; s.size() + tail.size() + 48 < target_bytes; ++k)
        stat("conference_size_" + num(k), num(next_rand(r) % 1000));
    s += tail;
    return s;
}

std::optional<BridgeStamp> read_bridge_stamp(const xml::Element& presence) {
    const xml::Element* stats = presence.child("stats", kNsColibri);
    if (!stats) return std::nullopt;
    BridgeStamp b;
    int found = 0;
    for (const xml::Element& st : stats->children) {
        const std::string* name = st.attr("name");
        const std::string* value = st.attr("value");
        if (!name || !value) continue;
        std::uint64_t* dst = *name == "loadgen_ts" ? &b.sent_us : *name == "loadgen_seq" ? &b.seq : nullptr;
        if (!dst) continue;
        std::uint64_t v = 0;
        for (char c : *value) {
            if (c < '0' || c > '9') return std::nullopt;
            v = v * 10 + static_cast<std::uint64_t>(c - '0');
        }
        *dst = v;
        if (++found == 2) return b;
    }
    return std::nullopt;
}

std::string groupchat(std::string_view room_jid, std::string_view id, std::string_view body) {
    return "<message to='" + escape(room_jid) + "' type='groupchat' id='" + escape(id) +
           "'><body>" + escape(body) + "</body></message>";
}

std::string chat(std::string_view to, std::string_view id, std::string_view body) {
    return "<message to='" + escape(to) + "' type='chat' id='" + escape(id) + "'><body>" +
           escape(body) + "</body></message>";
}

std::string expand(std::string_view tmpl, std::string_view key, std::string_view value) {
    std::string pat = "{" + std::string(key) + "}";
    std::string out;
    std::size_t i = 0;
    while (true) {
        std::size_t k = tmpl.find(pat, i);
        if (k == std::string_view::npos) {
            out.append(tmpl.substr(i));
            return out;
        }
        out.append(tmpl.substr(i, k - i));
        out += value;
        i = k + pat.size();
    }
}

}  // namespace xs::loadgen::stanzas
