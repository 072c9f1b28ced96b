// The opening-header sniffer: one byte at a time, never looking back, so that any split of the
// input gives the same verdict. See the header for the accepted language and the verdicts.
#include "routing/stream_header_sniffer.hpp"

#include "routing/xml_chars.hpp"

namespace xs::routing {

enum class StreamHeaderSniffer::State : std::uint8_t {
    Start = 0,        // nothing read yet: the first byte may be TLS, a BOM, or XML
    Bom,              // inside EF BB BF (match_ = bytes matched so far)
    Utf16Bom,         // first byte FE or FF (match_ = the byte that would complete a BOM)
    Prolog,           // whitespace, or '<' opening the root (or a refused construct)
    Lt,               // after '<' in the prolog
    DeclTarget,       // after "<?" at the very start, matching "xml" (match_ = bytes matched)
    DeclAfterTarget,  // after "<?xml": whitespace must follow
    DeclWs,           // declaration, after whitespace: a pseudo-attribute or "?>"
    DeclName,         // a pseudo-attribute name (version, encoding, standalone)
    DeclAfterName,    // whitespace before '='
    DeclAfterEq,      // whitespace before the opening quote
    DeclValue,        // inside a quoted pseudo-attribute value
    DeclAfterValue,   // right after the closing quote: whitespace or '?'
    DeclEnd,          // after '?': '>' ends the declaration
    ElemName,         // the root's qualified name
    TagWs,            // in the start tag after whitespace: an attribute, '>' or '/'
    AttrName,         // an attribute's qualified name
    AttrAfterName,    // whitespace before '='
    AttrAfterEq,      // whitespace before the opening quote
    AttrValue,        // inside a quoted attribute value
    AttrEntity,       // inside a reference: between '&' and ';'
    TagAfterValue,    // right after a closing quote: whitespace, '>' or '/'
    SelfClose,        // after '/': '>' would make the root empty
};

using namespace xml;

namespace {
constexpr std::size_t kMaxEntity = 32;     // "#x0000000010FFFF" fits; longer is refused
constexpr std::size_t kMaxDeclValue = 64;  // version, encoding name or standalone
}  // namespace

StreamHeaderSniffer::StreamHeaderSniffer(std::size_t max_header_bytes) : max_(max_header_bytes) {}

SniffStatus StreamHeaderSniffer::feed(std::string_view bytes) {
    for (char ch : bytes) {
        if (status_ != SniffStatus::NeedMore) break;
        ++seen_;
        step(static_cast<unsigned char>(ch));
        if (status_ == SniffStatus::NeedMore && seen_ >= max_) {
            // Byte number max_ was not the header's '>': the header cannot fit any more.
            reject(StreamCondition::PolicyViolation,
                   "no complete stream header within max_header_bytes = " + std::to_string(max_));
        }
    }
    return status_;
}

void StreamHeaderSniffer::reject(StreamCondition c, std::string why) {
    status_ = SniffStatus::Reject;
    condition_ = c;
    // Every quoted name or value passes through here: controls and backslashes escaped.
    detail_ = escape_controls(why);
    detail_ += " (at byte " + std::to_string(seen_) + ")";
    name_ = {};
    value_ = {};
    entity_ = {};
    attrs_ = {};
}

void StreamHeaderSniffer::not_well_formed(std::string why) {
    reject(StreamCondition::NotWellFormed, std::move(why));
}

void StreamHeaderSniffer::step(unsigned char c) {
    switch (state_) {
    case State::Start:
        if (c == 0x16) {
            status_ = SniffStatus::TlsClientHello;
            detail_ = "TLS handshake record (first byte 0x16) where XML was expected";
            return;
        }
        if (c == 0xEF) {
            state_ = State::Bom;
            match_ = 1;
            return;
        }
        if (c == 0xFE || c == 0xFF) {
            state_ = State::Utf16Bom;
            match_ = c == 0xFE ? 0xFF : 0xFE;
            return;
        }
        state_ = State::Prolog;  // and read c as the prolog's first byte
        break;
    case State::Bom:
        if (c != (match_ == 1 ? 0xBB : 0xBF)) return not_well_formed("truncated byte order mark");
        if (++match_ == 3) state_ = State::Prolog;
        return;
    case State::Utf16Bom:
        if (c == match_)
            return reject(StreamCondition::UnsupportedEncoding,
                          "UTF-16 byte order mark: only UTF-8 is supported");
        return not_well_formed("not XML: starts with byte 0xfe or 0xff");
    default:
        break;
    }

    if (c >= 0x80) return step_non_ascii(c);
    if (utf8_need_ != 0) return not_well_formed("truncated UTF-8 sequence");

    switch (state_) {
    case State::Prolog:
        if (is_ws(c)) {
            decl_allowed_ = false;
        } else if (c == '<') {
            state_ = State::Lt;
        } else if (seen_ == 1) {
            not_well_formed("not XML: starts with " + describe(c));
        } else {
            not_well_formed("expected '<' or whitespace before the root, got " + describe(c));
        }
        return;
    case State::Lt:
        if (c == '?') {
            if (!decl_allowed_)
                return reject(StreamCondition::RestrictedXml,
                              "processing instruction (only a leading XML declaration is allowed)");
            state_ = State::DeclTarget;
            match_ = 0;
        } else if (c == '!') {
            reject(StreamCondition::RestrictedXml,
                   "'<!' (DOCTYPE, entity declaration, comment or CDATA) before the root");
        } else if (is_name_start(c)) {
            decl_allowed_ = false;
            name_.assign(1, char(c));
            state_ = State::ElemName;
        } else {
            not_well_formed("expected the root element's name after '<', got " + describe(c));
        }
        return;
    case State::DeclTarget:
        if (c != "xml"[match_])
            return reject(StreamCondition::RestrictedXml,
                          "processing instruction (only a leading XML declaration is allowed)");
        if (++match_ == 3) state_ = State::DeclAfterTarget;
        return;
    case State::DeclAfterTarget:
        if (is_ws(c)) {
            state_ = State::DeclWs;
        } else if (is_name_char(c)) {
            reject(StreamCondition::RestrictedXml, "processing instruction '<?xml" +
                                                       std::string(1, char(c)) + "...'");
        } else {
            not_well_formed("malformed XML declaration: whitespace expected after '<?xml'");
        }
        return;
    case State::DeclWs:
        if (is_ws(c)) return;
        if (c >= 'a' && c <= 'z') {
            name_.assign(1, char(c));
            state_ = State::DeclName;
        } else if (c == '?') {
            if (decl_stage_ == 0) return not_well_formed("XML declaration without version");
            state_ = State::DeclEnd;
        } else {
            not_well_formed("malformed XML declaration: unexpected " + describe(c));
        }
        return;
    case State::DeclName:
        if (c >= 'a' && c <= 'z' && name_.size() < 10) {
            name_ += char(c);
        } else if (is_ws(c) || c == '=') {
            finish_decl_name();
            state_ = c == '=' ? State::DeclAfterEq : State::DeclAfterName;
        } else {
            not_well_formed("malformed XML declaration: unexpected " + describe(c));
        }
        return;
    case State::DeclAfterName:
        if (c == '=') {
            state_ = State::DeclAfterEq;
        } else if (!is_ws(c)) {
            not_well_formed("malformed XML declaration: '=' expected, got " + describe(c));
        }
        return;
    case State::DeclAfterEq:
        if (c == '\'' || c == '"') {
            quote_ = char(c);
            value_.clear();
            state_ = State::DeclValue;
        } else if (!is_ws(c)) {
            not_well_formed("malformed XML declaration: quote expected, got " + describe(c));
        }
        return;
    case State::DeclValue:
        if (c == (unsigned char)quote_) {
            finish_decl_value();
            state_ = State::DeclAfterValue;
        } else if (c >= 0x20 && c < 0x7F && value_.size() < kMaxDeclValue) {
            value_ += char(c);
        } else {
            not_well_formed("malformed XML declaration: bad value");
        }
        return;
    case State::DeclAfterValue:
        if (is_ws(c)) {
            state_ = State::DeclWs;
        } else if (c == '?') {
            state_ = State::DeclEnd;
        } else {
            not_well_formed("malformed XML declaration: unexpected " + describe(c));
        }
        return;
    case State::DeclEnd:
        if (c != '>') return not_well_formed("malformed XML declaration: '>' expected after '?'");
        decl_allowed_ = false;
        state_ = State::Prolog;
        return;
    case State::ElemName:
        if (is_name_char(c)) {
            name_ += char(c);
        } else if (is_ws(c) || c == '>' || c == '/') {
            finish_elem_name();
            if (status_ != SniffStatus::NeedMore) return;
            if (c == '>') return finish_tag(false);
            state_ = c == '/' ? State::SelfClose : State::TagWs;
        } else {
            not_well_formed("unexpected " + describe(c) + " in the root element's name");
        }
        return;
    case State::TagWs:
    case State::TagAfterValue:
        if (is_ws(c)) {
            state_ = State::TagWs;
        } else if (c == '>') {
            finish_tag(false);
        } else if (c == '/') {
            state_ = State::SelfClose;
        } else if (is_name_start(c) && state_ == State::TagWs) {
            name_.assign(1, char(c));
            state_ = State::AttrName;
        } else if (is_name_start(c)) {
            not_well_formed("missing whitespace between attributes");
        } else {
            not_well_formed("unexpected " + describe(c) + " in the stream header");
        }
        return;
    case State::AttrName:
        if (is_name_char(c)) {
            name_ += char(c);
        } else if (is_ws(c) || c == '=') {
            finish_attr_name();
            state_ = c == '=' ? State::AttrAfterEq : State::AttrAfterName;
        } else {
            not_well_formed("unexpected " + describe(c) + " in an attribute name");
        }
        return;
    case State::AttrAfterName:
        if (c == '=') {
            state_ = State::AttrAfterEq;
        } else if (!is_ws(c)) {
            not_well_formed("'=' expected after attribute '" + name_ + "', got " + describe(c));
        }
        return;
    case State::AttrAfterEq:
        if (c == '\'' || c == '"') {
            quote_ = char(c);
            value_.clear();
            pending_cr_ = false;
            state_ = State::AttrValue;
        } else if (!is_ws(c)) {
            not_well_formed("quote expected for attribute '" + name_ + "', got " + describe(c));
        }
        return;
    case State::AttrValue:
        if (c == (unsigned char)quote_) {
            attrs_.emplace_back(std::move(name_), std::move(value_));
            name_.clear();
            value_.clear();
            state_ = State::TagAfterValue;
        } else {
            attr_value_char(char(c));
        }
        return;
    case State::AttrEntity:
        if (c == ';') {
            finish_entity();
            state_ = State::AttrValue;
        } else if ((is_alpha(c) || is_digit(c) || c == '#') && entity_.size() < kMaxEntity) {
            entity_ += char(c);
        } else {
            not_well_formed("malformed entity reference '&" + entity_ + "'");
        }
        return;
    case State::SelfClose:
        if (c != '>') return not_well_formed("'>' expected after '/', got " + describe(c));
        finish_tag(true);
        return;
    case State::Start:
    case State::Bom:
    case State::Utf16Bom:
        break;  // handled above
    }
}

void StreamHeaderSniffer::attr_value_char(char ch) {
    auto c = static_cast<unsigned char>(ch);
    bool after_cr = pending_cr_;
    pending_cr_ = false;
    switch (c) {
    case '<':
        return not_well_formed("'<' in the value of attribute '" + name_ + "'");
    case '&':
        entity_.clear();
        state_ = State::AttrEntity;
        return;
    case '\r':  // attribute-value normalisation: CR, LF, CRLF and tab become one space
        value_ += ' ';
        pending_cr_ = true;
        return;
    case '\n':
        if (!after_cr) value_ += ' ';
        return;
    case '\t':
        value_ += ' ';
        return;
    default:
        if (c < 0x20) return not_well_formed("control character " + describe(c) + " in a value");
        value_ += ch;
    }
}

void StreamHeaderSniffer::step_non_ascii(unsigned char c) {
    if (utf8_need_ == 0) {  // a lead byte
        if (c >= 0xC2 && c <= 0xDF) {
            utf8_need_ = 1, utf8_cp_ = c & 0x1F, utf8_min_ = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            utf8_need_ = 2, utf8_cp_ = c & 0x0F, utf8_min_ = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            utf8_need_ = 3, utf8_cp_ = c & 0x07, utf8_min_ = 0x10000;
        } else {
            return not_well_formed("invalid UTF-8 (" + describe(c) + ")");
        }
        switch (state_) {
        case State::Lt:
            decl_allowed_ = false;
            name_.clear();
            state_ = State::ElemName;
            break;
        case State::TagWs:
            name_.clear();
            state_ = State::AttrName;
            break;
        case State::ElemName:
        case State::AttrName:
            break;
        case State::AttrValue:
            pending_cr_ = false;
            break;
        case State::DeclTarget:
        case State::DeclAfterTarget:  // <?xm\xC3... or <?xml\xC3...: a PI, not the declaration
            return reject(StreamCondition::RestrictedXml,
                          "processing instruction (only a leading XML declaration is allowed)");
        default:
            return not_well_formed("non-ASCII " + describe(c) + " outside a name or value");
        }
    } else {
        if ((c & 0xC0) != 0x80) return not_well_formed("invalid UTF-8 (" + describe(c) + ")");
        utf8_cp_ = (utf8_cp_ << 6) | (c & 0x3F);
        --utf8_need_;
    }
    std::string& buf = state_ == State::AttrValue ? value_ : name_;
    buf += char(c);
    if (utf8_need_ != 0) return;

    std::uint32_t cp = utf8_cp_;
    if (cp < utf8_min_ || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return not_well_formed("invalid UTF-8 (overlong, surrogate or out of range)");
    if (!is_xml_char(cp)) return not_well_formed("character not allowed in XML");
    if (state_ == State::AttrValue) return;
    std::size_t len = cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    bool at_start = buf.size() == len || buf[buf.size() - len - 1] == ':';
    if (at_start ? !is_name_start_cp(cp) : !is_name_char_cp(cp))
        not_well_formed("character not allowed in an XML name");
}

}  // namespace xs::routing
