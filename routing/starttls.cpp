#include "starttls.hpp"

#include <string>

#include "stream_error.hpp"

namespace xs::routing {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_name(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || c == ':' || static_cast<unsigned char>(c) >= 0x80;
}

// A name as quoted into a detail (logged, and sent back in <text/>): is_name admits any byte
// from 0x80 up, which may be invalid UTF-8 or a C1 control, so only ASCII names are quoted.
std::string shown(const std::string& name) {
    for (char c : name)
        if (static_cast<unsigned char>(c) >= 0x80) return "(a non-ASCII name)";
    return name;
}

}  // namespace

std::string starttls_offer(std::string_view from_domain, std::string_view content_ns,
                           std::string_view stream_id) {
    std::string out = stream_header_bytes(from_domain, content_ns, stream_id);
    out += "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
           "</starttls></stream:features>";
    return out;
}

std::string_view starttls_proceed() { return "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"; }

StartTlsStatus StartTlsReader::reject(StreamCondition c, std::string why) {
    status_ = StartTlsStatus::Reject;
    condition_ = c;
    detail_ = std::move(why);
    return status_;
}

StartTlsStatus StartTlsReader::feed(std::string_view bytes) {
    if (status_ != StartTlsStatus::NeedMore) {
        if (status_ == StartTlsStatus::Proceed) after_whitespace(bytes);
        return status_;
    }
    buf_.append(bytes);
    if (buf_.size() > kMaxBytes) {
        buf_.resize(kMaxBytes + 1);  // keep the bound; parse() reports it
    }
    return parse();
}

// Accepts exactly one element, <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/> (or with an
// empty body and an end tag), optionally preceded by whitespace (keepalives).
StartTlsStatus StartTlsReader::parse() {
    std::size_t i = 0, n = buf_.size();
    while (i < n && is_space(buf_[i])) ++i;
    if (i == n) return n > kMaxBytes ? reject(StreamCondition::PolicyViolation, "too much whitespace") : status_;
    if (buf_[i] != '<') return reject(StreamCondition::NotWellFormed, "expected an element");
    if (++i == n) return status_;
    if (buf_[i] == '/')
        return reject(StreamCondition::PolicyViolation, "stream closed before STARTTLS (TLS is required)");
    if (buf_[i] == '!' || buf_[i] == '?') return reject(StreamCondition::RestrictedXml, "markup other than an element");
    std::size_t name_start = i;
    while (i < n && is_name(buf_[i])) ++i;
    if (i == n) return n > kMaxBytes ? reject(StreamCondition::PolicyViolation, "element too long") : status_;
    std::string name = buf_.substr(name_start, i - name_start);
    if (name.empty()) return reject(StreamCondition::NotWellFormed, "expected an element name");
    if (name != "starttls")
        return reject(StreamCondition::PolicyViolation, "<" + shown(name) + "/> before STARTTLS (TLS is required)");
    // Attributes up to '>' or '/>'.
    bool ns_ok = false;
    for (;;) {
        while (i < n && is_space(buf_[i])) ++i;
        if (i == n) break;
        if (buf_[i] == '/' || buf_[i] == '>') break;
        std::size_t a = i;
        while (i < n && is_name(buf_[i])) ++i;
        std::string attr = buf_.substr(a, i - a);
        if (i == n) break;
        if (attr.empty()) return reject(StreamCondition::NotWellFormed, "bad attribute in <starttls/>");
        while (i < n && is_space(buf_[i])) ++i;
        if (i == n) break;
        if (buf_[i] != '=') return reject(StreamCondition::NotWellFormed, "expected '=' after " + shown(attr));
        ++i;
        while (i < n && is_space(buf_[i])) ++i;
        if (i == n) break;
        char q = buf_[i];
        if (q != '\'' && q != '"') return reject(StreamCondition::NotWellFormed, "attribute values need quotes");
        auto end = buf_.find(q, i + 1);
        if (end == std::string::npos) {
            i = n;
            break;
        }
        std::string value = buf_.substr(i + 1, end - i - 1);
        if (value.find('<') != std::string::npos) return reject(StreamCondition::NotWellFormed, "'<' in an attribute value");
        if (attr == "xmlns") ns_ok = value == kTlsNs;
        i = end + 1;
    }
    if (i >= n) return n > kMaxBytes ? reject(StreamCondition::PolicyViolation, "<starttls/> too long") : status_;
    std::size_t after;
    if (buf_[i] == '/') {
        if (i + 1 == n) return status_;
        if (buf_[i + 1] != '>') return reject(StreamCondition::NotWellFormed, "expected '/>'");
        after = i + 2;
    } else {
        // <starttls ...> then optional whitespace then </starttls>
        std::size_t j = i + 1;
        while (j < n && is_space(buf_[j])) ++j;
        std::string_view close = "</starttls>";
        std::size_t have = std::min(close.size(), n - j);
        if (std::string_view(buf_).substr(j, have) != close.substr(0, have))
            return reject(StreamCondition::PolicyViolation, "<starttls/> must be empty");
        if (have < close.size()) return status_;
        after = j + close.size();
    }
    if (!ns_ok) return reject(StreamCondition::InvalidNamespace, "<starttls/> not in " + std::string(kTlsNs));
    status_ = StartTlsStatus::Proceed;
    after_whitespace(std::string_view(buf_).substr(after));
    std::string().swap(buf_);
    return status_;
}

// Whitespace between top-level elements is allowed (RFC 6120 11.7; go-xmpp ends <starttls/> with
// a newline); anything else before <proceed/> is not (RFC 6120 5.4.3.3). Bounded like the rest.
void StartTlsReader::after_whitespace(std::string_view bytes) {
    for (char c : bytes) {
        if (!is_space(c)) {
            reject(StreamCondition::PolicyViolation, "data after <starttls/> before <proceed/>");
            return;
        }
    }
    trailing_ += bytes.size();
    if (trailing_ > kMaxBytes) reject(StreamCondition::PolicyViolation, "too much whitespace");
}

std::string_view StartTlsReader::tls_bytes(std::string_view bytes) {
    if (hello_started_) return bytes;
    std::size_t i = 0;
    while (i < bytes.size() && is_space(bytes[i])) ++i;
    if (i < bytes.size()) hello_started_ = true;
    return bytes.substr(i);
}

}  // namespace xs::routing
