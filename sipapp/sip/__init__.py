"""The SIP protocol layer: bytes in, objects out; objects in, bytes out.

Pure Python, no Twisted, no clock, no network. Everything a transport, a
transaction or the proxy needs to read and write SIP messages is exported
here.
"""

from sipapp.sip.address import STAR, NameAddr, parse_name_addr
from sipapp.sip.digest import Challenge, Credentials, parse_challenge, parse_credentials
from sipapp.sip.errors import FramingError, MessageTooLarge, ParseError, VersionNotSupported
from sipapp.sip.framing import PING, StreamFramer
from sipapp.sip.grammar import unescape
from sipapp.sip.message import CSeq, Message, Request, Response, make_response, parse_cseq
from sipapp.sip.parser import error_response, parse_message
from sipapp.sip.status import reason_phrase
from sipapp.sip.uri import AbsoluteUri, SipUri, TelUri, Uri, parse_host, parse_uri
from sipapp.sip.validate import KNOWN_METHODS, Rejection, check_request, validate
from sipapp.sip.via import MAGIC_COOKIE, Via, parse_via

__all__ = [
    "KNOWN_METHODS",
    "MAGIC_COOKIE",
    "PING",
    "STAR",
    "AbsoluteUri",
    "CSeq",
    "Challenge",
    "Credentials",
    "FramingError",
    "Message",
    "MessageTooLarge",
    "NameAddr",
    "ParseError",
    "Rejection",
    "Request",
    "Response",
    "SipUri",
    "StreamFramer",
    "TelUri",
    "Uri",
    "VersionNotSupported",
    "Via",
    "check_request",
    "error_response",
    "make_response",
    "parse_challenge",
    "parse_credentials",
    "parse_cseq",
    "parse_host",
    "parse_message",
    "parse_name_addr",
    "parse_uri",
    "parse_via",
    "reason_phrase",
    "unescape",
    "validate",
]
