// The stanzas the simulated clients send, as strings: stream header, STARTTLS, SASL, bind,
// Jitsi-like MUC presences (nick, audio/video muted flags, a stats payload padded to a size),
// JvbBrewery bridge presences with colibri stats, groupchat and chat messages.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "xml_stream.hpp"

namespace xs::loadgen::stanzas {

inline constexpr std::string_view kNsTls = "urn:ietf:params:xml:ns:xmpp-tls";
inline constexpr std::string_view kNsSasl = "urn:ietf:params:xml:ns:xmpp-sasl";
inline constexpr std::string_view kNsBind = "urn:ietf:params:xml:ns:xmpp-bind";
inline constexpr std::string_view kNsSession = "urn:ietf:params:xml:ns:xmpp-session";
inline constexpr std::string_view kNsStreams = "urn:ietf:params:xml:ns:xmpp-streams";
inline constexpr std::string_view kNsMuc = "http://jabber.org/protocol/muc";
inline constexpr std::string_view kNsMucUser = "http://jabber.org/protocol/muc#user";
inline constexpr std::string_view kNsColibri = "http://jitsi.org/protocol/colibri";

std::string stream_header(std::string_view domain);
inline std::string stream_close() { return "</stream:stream>"; }
std::string starttls();
// `initial` is the raw (not yet base64) initial response; empty gives "=" (RFC 6120 6.4.2).
std::string sasl_auth(std::string_view mechanism, std::string_view initial);
std::string sasl_response(std::string_view raw);
std::string bind(std::string_view id, std::string_view resource);
std::string session(std::string_view id);

// A Jitsi Meet participant's MUC presence: <x xmlns=muc/> (join only), stats-id, caps, codec
// type, audio/video muted flags, nick, and an <stats> payload padded so the stanza is about
// `target_bytes` long.
std::string jitsi_join(std::string_view room_nick_jid, std::string_view nick, bool join,
                       std::size_t target_bytes, std::uint32_t seed);
std::string leave(std::string_view room_nick_jid);

// A JVB's brewery presence: colibri stats (stress level, conference and participant counts,
// region, version ...), padded to about `target_bytes`, with the send time in microseconds and
// a sequence number as stats so the observer can measure delivery latency.
std::string bridge_presence(std::string_view room_nick_jid, bool join, std::size_t target_bytes,
                            std::uint64_t sent_us, std::uint64_t seq);
// Reads the send time back out of a bridge presence's stats (nullopt if absent).
struct BridgeStamp {
    std::uint64_t sent_us = 0;
    std::uint64_t seq = 0;
};
std::optional<BridgeStamp> read_bridge_stamp(const xml::Element& presence);

std::string groupchat(std::string_view room_jid, std::string_view id, std::string_view body);
std::string chat(std::string_view to, std::string_view id, std::string_view body);

// Replaces every "{key}" in `tmpl` by `value`.
std::string expand(std::string_view tmpl, std::string_view key, std::string_view value);

}  // namespace xs::loadgen::stanzas
