// The refusal bytes: parsed back by an independent XML parser (pugixml) and by our own sniffer.
#include <catch2/catch.hpp>
#include <pugixml.hpp>

#include "routing/stream_error.hpp"
#include "routing/stream_header_sniffer.hpp"

using namespace xs::routing;

namespace {

constexpr const char* kErrNs = "urn:ietf:params:xml:ns:xmpp-streams";

pugi::xml_document parse(const std::string& bytes) {
    pugi::xml_document doc;
    auto r = doc.load_buffer(bytes.data(), bytes.size(),
                             pugi::parse_default | pugi::parse_declaration, pugi::encoding_utf8);
    INFO(bytes);
    REQUIRE(r);
    return doc;
}

const StreamCondition kAll[] = {
    StreamCondition::BadFormat,           StreamCondition::ConnectionTimeout,
    StreamCondition::HostUnknown,         StreamCondition::InvalidNamespace,
    StreamCondition::InvalidXml,          StreamCondition::NotWellFormed,
    StreamCondition::PolicyViolation,     StreamCondition::RemoteConnectionFailed,
    StreamCondition::RestrictedXml,       StreamCondition::SeeOtherHost,
    StreamCondition::SystemShutdown,      StreamCondition::UnsupportedEncoding,
    StreamCondition::UnsupportedVersion,
};

}  // namespace

TEST_CASE("to_string gives the RFC 6120 element names", "[stream_error]") {
    CHECK(to_string(StreamCondition::BadFormat) == "bad-format");
    CHECK(to_string(StreamCondition::ConnectionTimeout) == "connection-timeout");
    CHECK(to_string(StreamCondition::HostUnknown) == "host-unknown");
    CHECK(to_string(StreamCondition::InvalidNamespace) == "invalid-namespace");
    CHECK(to_string(StreamCondition::InvalidXml) == "invalid-xml");
    CHECK(to_string(StreamCondition::NotWellFormed) == "not-well-formed");
    CHECK(to_string(StreamCondition::PolicyViolation) == "policy-violation");
    CHECK(to_string(StreamCondition::RemoteConnectionFailed) == "remote-connection-failed");
    CHECK(to_string(StreamCondition::RestrictedXml) == "restricted-xml");
    CHECK(to_string(StreamCondition::SeeOtherHost) == "see-other-host");
    CHECK(to_string(StreamCondition::SystemShutdown) == "system-shutdown");
    CHECK(to_string(StreamCondition::UnsupportedEncoding) == "unsupported-encoding");
    CHECK(to_string(StreamCondition::UnsupportedVersion) == "unsupported-version");
}

TEST_CASE("xml_escape escapes markup and both quotes", "[stream_error]") {
    CHECK(xml_escape("") == "");
    CHECK(xml_escape("plain.example.com") == "plain.example.com");
    CHECK(xml_escape("a&b<c>d'e\"f") == "a&amp;b&lt;c&gt;d&apos;e&quot;f");
    CHECK(xml_escape("&amp;") == "&amp;amp;");
    CHECK(xml_escape("t\tn\nr\r") == "t\tn\nr\r");
    CHECK(xml_escape(std::string("a\0b\x1f", 4)) == "a?b?");
    CHECK(xml_escape("\xC3\xA9") == "\xC3\xA9");
}

TEST_CASE("stream error bytes: exact form of a host-unknown refusal", "[stream_error]") {
    StreamErrorSpec spec;
    spec.condition = StreamCondition::HostUnknown;
    spec.from_domain = "nowhere.example";
    CHECK(stream_error_bytes(spec) ==
          "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
          "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' from='nowhere.example'>"
          "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
          "</stream:error></stream:stream>");
}

TEST_CASE("stream error bytes are well-formed for every condition", "[stream_error]") {
    for (StreamCondition c : kAll) {
        for (bool with_from : {false, true}) {
            StreamErrorSpec spec;
            spec.condition = c;
            if (with_from) spec.from_domain = "meet.example.com";
            spec.text = "why <&> 'it' \"failed\"";
            std::string bytes = stream_error_bytes(spec);
            INFO(bytes);
            auto doc = parse(bytes);
            auto root = doc.child("stream:stream");
            REQUIRE(root);
            CHECK(std::string(root.attribute("xmlns").value()) == "jabber:client");
            CHECK(std::string(root.attribute("xmlns:stream").value()) ==
                  "http://etherx.jabber.org/streams");
            CHECK(std::string(root.attribute("version").value()) == "1.0");
            CHECK(bool(root.attribute("from")) == with_from);
            if (with_from) CHECK(std::string(root.attribute("from").value()) == "meet.example.com");
            CHECK_FALSE(root.attribute("id"));
            auto err = root.child("stream:error");
            REQUIRE(err);
            auto cond = err.first_child();
            CHECK(std::string(cond.name()) == std::string(to_string(c)));
            CHECK(std::string(cond.attribute("xmlns").value()) == kErrNs);
            auto text = err.child("text");
            REQUIRE(text);
            CHECK(std::string(text.attribute("xmlns").value()) == kErrNs);
            CHECK(std::string(text.text().get()) == "why <&> 'it' \"failed\"");
            CHECK(bytes.find("<&>") == std::string::npos);

            // The header part is a stream header our own sniffer accepts.
            StreamHeaderSniffer s;
            REQUIRE(s.feed(bytes) == SniffStatus::Done);
            CHECK(s.header().prefix == "stream");
            CHECK(s.header().content_ns == "jabber:client");
            CHECK(s.header().version == "1.0");
            CHECK_FALSE(s.header().has_to);
            CHECK(bytes.substr(s.header().consumed, 14) == "<stream:error>");
        }
    }
}

TEST_CASE("stream error bytes: component namespace, id, escaping of from", "[stream_error]") {
    StreamErrorSpec spec;
    spec.condition = StreamCondition::RemoteConnectionFailed;
    spec.content_ns = kComponentNs;
    spec.from_domain = "x'y&z.example";
    spec.stream_id = "id<1>";
    std::string bytes = stream_error_bytes(spec);
    auto doc = parse(bytes);
    auto root = doc.child("stream:stream");
    CHECK(std::string(root.attribute("xmlns").value()) == "jabber:component:accept");
    CHECK(std::string(root.attribute("from").value()) == "x'y&z.example");
    CHECK(std::string(root.attribute("id").value()) == "id<1>");
    CHECK_FALSE(root.child("stream:error").child("text"));
    CHECK(root.child("stream:error").child("remote-connection-failed"));

    spec.content_ns = "";  // unknown: jabber:client
    auto doc2 = parse(stream_error_bytes(spec));
    CHECK(std::string(doc2.child("stream:stream").attribute("xmlns").value()) == "jabber:client");
}

TEST_CASE("stream error bytes: see-other-host carries the host as content", "[stream_error]") {
    StreamErrorSpec spec;
    spec.condition = StreamCondition::SeeOtherHost;
    spec.other_host = "[2001:db8::1]:5222";
    auto doc = parse(stream_error_bytes(spec));
    auto soh = doc.child("stream:stream").child("stream:error").child("see-other-host");
    REQUIRE(soh);
    CHECK(std::string(soh.attribute("xmlns").value()) == kErrNs);
    CHECK(std::string(soh.text().get()) == "[2001:db8::1]:5222");

    spec.other_host = "a<b";
    std::string bytes = stream_error_bytes(spec);
    CHECK(bytes.find(">a&lt;b</see-other-host>") != std::string::npos);
}
