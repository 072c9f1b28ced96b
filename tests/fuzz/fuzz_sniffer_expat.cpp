// libFuzzer target: differential test of the stream-header sniffer against expat (the XML
// parser Prosody uses) on the same bytes.
//
// The sniffer runs unbounded (max_header_bytes out of the way) on the whole input. expat runs
// with namespace processing (XML_ParserCreateNS, as Prosody) on the whole input too, stopping
// at the root's start tag (XML_StopParser from its handler); when it has neither started the root
// nor failed, the document is finished (isFinal) so that pending errors surface. Agreement:
//
//   sniffer Done          expat started the root without error, saw no comment/PI/DOCTYPE, the
//                         root is {http://etherx.jabber.org/streams}stream, and the root's
//                         prefix, 'to' (presence and decoded, normalised value), 'version' and
//                         default namespace are the same as the sniffer's.
//   Reject not-well-formed, or TlsClientHello
//                         expat did not start the root without error (it failed, or the input
//                         ends first and finishing it fails).
//   Reject restricted-xml expat did not start the root cleanly: it failed, or reported a
//                         comment, PI or DOCTYPE.
//   Reject invalid-namespace / invalid-xml
//                         decided at the root's '>' or earlier, on a header expat finds well
//                         formed: expat fed the bytes up to the sniffer's deciding byte reports no
//                         error, and once it has the start tag, its root is not a stream
//                         (invalid-namespace) or is a stream (invalid-xml, an empty root).
//   Reject unsupported-encoding
//                         the XML declaration, if expat got to its end, names an encoding that is
//                         not UTF-8 (expat is told to read UTF-8 regardless, like Prosody).
//   NeedMore              expat did not start the root cleanly, and did not fail before the end
//                         of the input either (the sniffer would have missed an error).
//   Reject policy-violation never (unbounded).
//
// Documented exceptions (two differences of XML editions, two of timing or order, one of
// bounds, one of encoding detection), each narrowly recognised:
//   E1 XML 1.0 fifth edition name characters (the sniffer) against the fourth edition's tables
//      (expat): where expat fails with XML_ERROR_INVALID_TOKEN at a non-ASCII character of the
//      input and the sniffer accepted it, the disagreement is E1 when the sniffer's verdict
//      does not change after every non-ASCII character in a name position is replaced with
//      an ASCII spelling of it (its code point in hex between markers that occur nowhere else
//      in the input, so no two names merge), and the ASCII input then passes
//      the whole check: only the name-character sets differ, the rest must still agree.
//   E2 the XML declaration's version: the sniffer requires "1." followed by digits (XML 1.0
//      fifth edition, VersionNum); expat accepts any version string of name characters. A
//      not-well-formed verdict whose detail is about the declaration's version is E2.
//   E3 a root whose local name is not "stream" is refused (invalid-namespace) as soon as its
//      name ends, by design: it can never be a stream. When that name is followed at once by
//      '>', expat, reading the complete tag, may first report a namespace-processing error of
//      the same tag (an unbound prefix, a reserved prefix); both are refusals of a tag that
//      was never going to be a stream, they differ only in which of two true problems is
//      named. Recognised by the sniffer's detail ("root element '...' is not a stream") and
//      expat's error being one of namespace processing.
//   E4 names and references are checked when they end (a name at whitespace, '=', '>' or '/';
//      a reference &...; at ';' or after 32 characters), expat fails at the first character
//      that cannot continue them (a second ':' in a name, a non-hex digit in &#x...;). While
//      the input ends inside such a token the sniffer still waits; its verdict comes when the
//      token ends. E4 holds when everything from expat's error to the end of the input is one
//      unterminated token and the same input with the token ended (';' or a space) is refused
//      exactly at that added byte. Likewise the XML declaration's values (version, encoding,
//      standalone) are checked when their quote closes: an unfinished declaration whose value,
//      once closed, is refused right at that quote is E4 too.
//   E5 fixed bounds: the sniffer keeps at most 64 bytes of an XML declaration value and 32
//      characters of a reference (&...;), and refuses longer ones as not-well-formed: XML has
//      no such limits (version='1.' followed by 70 digits, &#x0000...0041; with 40 zeros), and
//      no client sends them. Recognised by the detail and the length reached at the deciding byte.
//   E6 UTF-16 without a byte order mark: expat detects UTF-16 from a first '<' next to a NUL
//      byte (3C 00 or 00 3C, XML 1.0 appendix F) even when created for UTF-8, and may parse a
//      header there; the sniffer reads UTF-8 only (the contract: other encodings are refused)
//      and refuses the NUL byte as not-well-formed. Inputs starting so are not compared.
#include <expat.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "routing/stream_header_sniffer.hpp"

using namespace xs::routing;

namespace {

// Names come back as "ns<SEP>local<SEP>prefix". SEP is \x01, as in Prosody (util.xmppstream):
// expat refuses a namespace URI containing the separator, and \x01 cannot occur in XML.
constexpr char kSep = '\x01';
constexpr std::string_view kStreamRoot = "http://etherx.jabber.org/streams\x01stream";

struct ExpatView {
    XML_Parser parser = nullptr;
    bool started = false;        // the root's start tag was reported
    bool error = false;          // expat failed (not counting our own stop)
    bool error_final = false;    // ... only when told the input had ended
    XML_Error code = XML_ERROR_NONE;
    std::size_t error_at = 0;    // byte index expat reports for the error
    bool restricted = false;     // comment, processing instruction or DOCTYPE
    bool decl_seen = false;
    std::string decl_encoding;   // of the XML declaration, when it had one
    bool decl_has_encoding = false;
    std::string root;            // "ns SEP local" (prefix dropped)
    std::string prefix;
    std::optional<std::string> to, version;
    std::string default_ns;      // declared by xmlns='...' on the root
};

void XMLCALL on_start(void* u, const XML_Char* name, const XML_Char** atts) {
    auto* e = static_cast<ExpatView*>(u);
    if (e->started) return;
    e->started = true;
    // With XML_SetReturnNSTriplet: "ns SEP local SEP prefix", "ns SEP local" or "local".
    std::string_view n(name);
    std::size_t a = n.find(kSep);
    std::size_t b = a == std::string_view::npos ? a : n.find(kSep, a + 1);
    e->root = std::string(b == std::string_view::npos ? n : n.substr(0, b));
    if (b != std::string_view::npos) e->prefix = std::string(n.substr(b + 1));
    for (int i = 0; atts[i]; i += 2) {
        if (std::strcmp(atts[i], "to") == 0) e->to = atts[i + 1];
        if (std::strcmp(atts[i], "version") == 0) e->version = atts[i + 1];
    }
    XML_StopParser(e->parser, XML_FALSE);
}
void XMLCALL on_end(void*, const XML_Char*) {}
void XMLCALL on_ns(void* u, const XML_Char* prefix, const XML_Char* uri) {
    auto* e = static_cast<ExpatView*>(u);
    if (!e->started && !prefix) e->default_ns = uri ? uri : "";
}
void XMLCALL on_pi(void* u, const XML_Char*, const XML_Char*) {
    static_cast<ExpatView*>(u)->restricted = true;
}
void XMLCALL on_comment(void* u, const XML_Char*) { static_cast<ExpatView*>(u)->restricted = true; }
void XMLCALL on_doctype(void* u, const XML_Char*, const XML_Char*, const XML_Char*, int) {
    static_cast<ExpatView*>(u)->restricted = true;
}
void XMLCALL on_decl(void* u, const XML_Char*, const XML_Char* encoding, int) {
    auto* e = static_cast<ExpatView*>(u);
    e->decl_seen = true;
    e->decl_has_encoding = encoding != nullptr;
    if (encoding) e->decl_encoding = encoding;
}

// finish: tell expat the input ends here (when it neither started the root nor failed).
ExpatView run_expat(std::string_view in, bool finish) {
    ExpatView e;
    XML_Parser p = XML_ParserCreateNS("UTF-8", kSep);
    e.parser = p;
    XML_SetReturnNSTriplet(p, 1);
    XML_SetUserData(p, &e);
    XML_SetElementHandler(p, on_start, on_end);
    XML_SetStartNamespaceDeclHandler(p, on_ns);
    XML_SetProcessingInstructionHandler(p, on_pi);
    XML_SetCommentHandler(p, on_comment);
    XML_SetStartDoctypeDeclHandler(p, on_doctype);
    XML_SetXmlDeclHandler(p, on_decl);
    auto fail = [&](bool final) {
        e.code = XML_GetErrorCode(p);
        if (e.code == XML_ERROR_ABORTED) return;  // our own stop at the root
        e.error = true;
        e.error_final = final;
        e.error_at = static_cast<std::size_t>(XML_GetCurrentByteIndex(p));
    };
    if (XML_Parse(p, in.data(), static_cast<int>(in.size()), 0) == XML_STATUS_ERROR) fail(false);
    if (finish && !e.started && !e.error && XML_Parse(p, "", 0, 1) == XML_STATUS_ERROR)
        fail(true);
    XML_ParserFree(p);
    return e;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

// E1: replace each non-ASCII character that stands in a name (between '<' and '>', outside
// quotes) with its code point in hex between two markers ("zq200czq"), the marker being a
// string that occurs nowhere in the input: distinct names stay distinct (and distinct from
// every name already there), and the result is ASCII. Everything else is kept.
std::string asciify_names(std::string_view in) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string marker = "zq";
    while (in.find(marker) != std::string_view::npos) marker += 'q';
    std::string out;
    bool in_tag = false;
    char quote = 0;
    for (std::size_t i = 0; i < in.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(in[i]);
        if (quote) {
            if (c == static_cast<unsigned char>(quote)) quote = 0;
            out += static_cast<char>(c);
        } else if (c == '<') {
            in_tag = true, out += '<';
        } else if (c == '>') {
            in_tag = false, out += '>';
        } else if (in_tag && (c == '\'' || c == '"')) {
            quote = static_cast<char>(c), out += static_cast<char>(c);
        } else if (in_tag && c >= 0xC2 && c <= 0xF4) {
            const std::size_t n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;
            std::uint32_t cp = c & (0x3F >> n);
            bool ok = i + n < in.size();
            for (std::size_t k = 1; ok && k <= n; ++k) {
                const unsigned char d = static_cast<unsigned char>(in[i + k]);
                ok = (d & 0xC0) == 0x80;
                cp = (cp << 6) | (d & 0x3F);
            }
            if (!ok) {
                out += static_cast<char>(c);  // not UTF-8: left for both parsers to refuse
                continue;
            }
            out += marker;
            for (int shift = 20; shift >= 0; shift -= 4)
                if ((cp >> shift) != 0 || shift == 0) out += kHex[(cp >> shift) & 0xF];
            out += marker;
            i += n;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

// Errors of namespace processing (XML Namespaces 1.0), as opposed to XML 1.0 well-formedness.
bool is_namespace_error(XML_Error code) {
    switch (code) {
    case XML_ERROR_UNBOUND_PREFIX:
    case XML_ERROR_UNDECLARING_PREFIX:
    case XML_ERROR_RESERVED_PREFIX_XML:
    case XML_ERROR_RESERVED_PREFIX_XMLNS:
    case XML_ERROR_RESERVED_NAMESPACE_URI:
        return true;
    default:
        return false;
    }
}

bool has_non_ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c >= 0x80) return true;
    return false;
}

struct Sniffed {
    SniffStatus status;
    StreamCondition condition;
    std::string detail;
    StreamHeader header;
    std::size_t seen;
};

Sniffed sniff(std::string_view in) {
    StreamHeaderSniffer s(std::numeric_limits<std::size_t>::max());
    s.feed(in);
    return {s.status(), s.condition(), s.detail(), s.header(), s.bytes_seen()};
}

void check(std::string_view in, bool allow_e1);

// E5: refused at the sniffer's fixed bounds: a 65th byte in an XML declaration value, or a
// 33rd character in a reference, that would otherwise continue it.
bool explained_by_e5(std::string_view in, const Sniffed& s) {
    if (s.seen == 0 || s.seen > in.size()) return false;
    const std::size_t k = s.seen - 1;  // the deciding byte
    const unsigned char c = static_cast<unsigned char>(in[k]);
    if (s.detail.rfind("malformed XML declaration: bad value", 0) == 0) {
        const std::size_t q = in.substr(0, k).find_last_of("'\"");
        return q != std::string_view::npos && k - q - 1 == 64 && c >= 0x20 && c < 0x7F &&
               c != static_cast<unsigned char>(in[q]);
    }
    if (s.detail.rfind("malformed entity reference '&", 0) == 0) {
        const std::size_t amp = in.substr(0, k).rfind('&');
        const bool more = (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '#';
        return amp != std::string_view::npos && k - amp - 1 == 32 && more;
    }
    return false;
}

// E1: expat failed on a non-ASCII character and the input has non-ASCII characters in names.
// With those characters made ASCII the sniffer's verdict must not change, and the ASCII input
// must pass the whole differential check on its own (check() aborts if it does not), so that
// another disagreement hiding behind the first is still caught.
bool explained_by_e1(std::string_view in, const Sniffed& s, const ExpatView& e, bool allow) {
    if (!allow || !e.error || e.code != XML_ERROR_INVALID_TOKEN || !has_non_ascii(in)) return false;
    if (e.error_at >= in.size() || !has_non_ascii(in.substr(e.error_at))) return false;
    const std::string ascii = asciify_names(in);
    if (ascii == in) return false;
    const Sniffed a = sniff(ascii);
    if (a.status != s.status || (a.status == SniffStatus::Reject && a.condition != s.condition))
        return false;
    check(ascii, false);
    return true;
}

// E4: the input ends inside a name or a reference that expat already refused; the sniffer
// refuses it when it ends: the same input with the token ended (';' for a reference, a space for
// a name) is refused exactly at that added byte.
bool explained_by_e4(std::string_view in, const ExpatView& e) {
    if (e.error_at >= in.size()) return false;
    const std::string_view tail = in.substr(e.error_at);
    if (tail.find_first_of(" \t\r\n=>/;'\"<&") != std::string_view::npos)
        return false;
    for (const char* end : {";", " "}) {
        const Sniffed ended = sniff(std::string(in) + end);
        if (ended.status == SniffStatus::Reject && ended.seen == in.size() + 1) return true;
    }
    return false;
}

// E4 in the XML declaration: its pseudo-attribute values are checked when their quote closes
// (or after 64 bytes). Holds when the input starts a declaration and ending the value refuses
// the declaration exactly there (so the sniffer was still inside that value).
bool explained_by_e4_decl(std::string_view in) {
    std::string_view d = in;
    if (d.substr(0, 3) == "\xEF\xBB\xBF") d.remove_prefix(3);
    if (d.substr(0, 5) != "<?xml") return false;
    for (const char* end : {"'", "\""}) {
        const Sniffed ended = sniff(std::string(in) + end);
        if (ended.status == SniffStatus::Reject && ended.seen == in.size() + 1 &&
            ended.condition == StreamCondition::NotWellFormed &&
            ended.detail.find("XML declaration") != std::string::npos)
            return true;
    }
    return false;
}

std::string expat_text(const ExpatView& e) {
    std::string t = "expat: ";
    if (e.error)
        t += std::string("error '") + XML_ErrorString(e.code) + "' at byte " +
             std::to_string(e.error_at) + (e.error_final ? " (at the end)" : "");
    else
        t += "no error";
    std::string root = e.root;
    for (char& ch : root)
        if (ch == kSep) ch = '|';
    t += e.started ? ", root " + root + " prefix '" + e.prefix + "'" : ", root not started";
    if (e.restricted) t += ", saw a comment/PI/DOCTYPE";
    return t;
}

void check(std::string_view in, bool allow_e1) {
    // E6: expat reads this as UTF-16 whatever it is told; the sniffer reads UTF-8 only.
    if (in.size() >= 2 && ((in[0] == '<' && in[1] == '\0') || (in[0] == '\0' && in[1] == '<')))
        return;
    const Sniffed s = sniff(in);
    const ExpatView e = run_expat(in, true);
    const bool expat_clean = e.started && !e.error && !e.restricted;
    const bool expat_stream = e.started && !e.error && e.root == kStreamRoot;
    const std::string why = std::string("sniffer: ") +
                            (s.status == SniffStatus::Reject ? std::string(to_string(s.condition)) +
                                                                   " '" + s.detail + "'"
                                                             : s.status == SniffStatus::Done ? "Done"
                                                             : s.status == SniffStatus::NeedMore
                                                                 ? "NeedMore"
                                                                 : "TlsClientHello") +
                            "; " + expat_text(e);

    switch (s.status) {
    case SniffStatus::Done: {
        if (!(expat_clean && expat_stream) && explained_by_e1(in, s, e, allow_e1)) return;
        XS_FUZZ_CHECK(expat_clean && expat_stream, "sniffer accepted what expat refuses: " + why,
                      in);
        const StreamHeader& h = s.header;
        XS_FUZZ_CHECK(h.prefix == e.prefix, "prefix differs: '" + h.prefix + "'; " + why, in);
        XS_FUZZ_CHECK(h.has_to == e.to.has_value() && (!h.has_to || h.to == *e.to),
                      "'to' differs: sniffer '" + h.to + "' expat '" + e.to.value_or("(none)") +
                          "'", in);
        XS_FUZZ_CHECK(h.version == e.version.value_or(""),
                      "'version' differs: sniffer '" + h.version + "' expat '" +
                          e.version.value_or("(none)") + "'", in);
        if (!h.prefix.empty())
            XS_FUZZ_CHECK(h.content_ns == e.default_ns, "content namespace differs: sniffer '" +
                                                            h.content_ns + "' expat '" +
                                                            e.default_ns + "'", in);
        else
            XS_FUZZ_CHECK(h.content_ns.empty(), "content namespace on an unprefixed root", in);
        return;
    }
    case SniffStatus::TlsClientHello:
        XS_FUZZ_CHECK(in[0] == 0x16 && !e.started, "TLS verdict: " + why, in);
        return;
    case SniffStatus::NeedMore:
        if (expat_clean || (e.error && !e.error_final)) {
            if (explained_by_e1(in, s, e, allow_e1)) return;
        }
        if (e.error && !e.error_final && (explained_by_e4(in, e) || explained_by_e4_decl(in)))
            return;
        XS_FUZZ_CHECK(!expat_clean, "sniffer still waiting on a header expat accepted: " + why, in);
        XS_FUZZ_CHECK(!(e.error && !e.error_final),
                      "expat failed inside the input, the sniffer still waits: " + why, in);
        return;
    case SniffStatus::Reject:
        break;
    }

    switch (s.condition) {
    case StreamCondition::NotWellFormed:
        if (s.detail.find("declaration: version") != std::string::npos) return;  // E2
        if (explained_by_e5(in, s)) return;
        XS_FUZZ_CHECK(!(e.started && !e.error), "sniffer said not-well-formed, expat accepted: " +
                                                    why, in);
        return;
    case StreamCondition::RestrictedXml:
        XS_FUZZ_CHECK(!expat_clean, "restricted-xml on a clean header: " + why, in);
        return;
    case StreamCondition::InvalidNamespace:
    case StreamCondition::InvalidXml: {
        const ExpatView pre = run_expat(in.substr(0, s.seen), false);
        if (pre.error && explained_by_e1(in, s, pre, allow_e1)) return;
        if (pre.error && s.condition == StreamCondition::InvalidNamespace &&
            s.detail.rfind("root element '", 0) == 0 && is_namespace_error(pre.code))
            return;  // E3
        XS_FUZZ_CHECK(!pre.error, "sniffer found it well formed up to byte " +
                                      std::to_string(s.seen) + ", expat did not: " + why +
                                      "; on that prefix " + expat_text(pre), in);
        if (pre.started) {
            if (s.condition == StreamCondition::InvalidNamespace)
                XS_FUZZ_CHECK(pre.root != kStreamRoot, "invalid-namespace on a stream root: " +
                                                           expat_text(pre), in);
            else
                XS_FUZZ_CHECK(pre.root == kStreamRoot, "invalid-xml on another root: " +
                                                           expat_text(pre), in);
        } else {
            XS_FUZZ_CHECK(s.condition == StreamCondition::InvalidNamespace,
                          "invalid-xml decided before the root's end: " + expat_text(pre), in);
        }
        return;
    }
    case StreamCondition::UnsupportedEncoding:
        if (e.decl_seen)
            XS_FUZZ_CHECK(e.decl_has_encoding && !iequals(e.decl_encoding, "UTF-8"),
                          "unsupported-encoding, expat read encoding '" + e.decl_encoding + "'",
                          in);
        return;
    default:
        XS_FUZZ_CHECK(false, "unexpected condition: " + why, in);
    }
    return;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > (1u << 16)) return 0;  // expat takes an int length; headers are small anyway
    check(std::string_view(reinterpret_cast<const char*>(data), size), true);
    return 0;
}
