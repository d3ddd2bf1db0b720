"""The gRPC servicer: protobuf in, data-plane calls (service/server/dataplane.py), protobuf out.

Nothing here decides what a request means; it converts messages, and maps domain errors to
gRPC status codes in one place (`STATUS`).
"""
from __future__ import annotations

import functools
import logging
import math

import grpc

from model.engine.suggest import Candidate
from model.engine.typos import Autocorrect
from service.api.nextword.v1 import nextword_pb2 as pb
from service.api.nextword.v1 import nextword_pb2_grpc as pb_grpc
from service.server.errors import Busy, InvalidInput, PersonalOff, TooLarge, Unavailable, Unsigned, WrongSignature
from service.server.dataplane import Answer, Ask, Change, DataPlane
from service.server.users.layer import Learned, Outcome
from service.server.users.store import Snapshot

log = logging.getLogger("nextword.protocol")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["NextWord"].full_name

STATUS = {
    InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    Busy: grpc.StatusCode.RESOURCE_EXHAUSTED,
    TooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    PersonalOff: grpc.StatusCode.FAILED_PRECONDITION,
    Unsigned: grpc.StatusCode.UNAUTHENTICATED,
    WrongSignature: grpc.StatusCode.PERMISSION_DENIED,
}
OUTCOMES = {Outcome.LEARNED: pb.LearnResponse.LEARNED, Outcome.NOTHING_TO_LEARN: pb.LearnResponse.NOTHING_TO_LEARN,
            Outcome.STORE_DOWN: pb.LearnResponse.STORE_DOWN, Outcome.BUSY: pb.LearnResponse.BUSY,
            Outcome.INCOGNITO: pb.LearnResponse.INCOGNITO}


def status_for(error: Exception) -> grpc.StatusCode:
    """The status of a domain error; INTERNAL for anything else (a bug)."""
    return next((code for kind, code in STATUS.items() if isinstance(error, kind)), grpc.StatusCode.INTERNAL)


# ---- protobuf -> the data plane ---------------------------------------------------------

def ask_of(k: int, options: pb.PredictOptions) -> Ask:
    return Ask(k, options.keyboard_layout, options.exact_only, options.user, options.incognito)


def change_of(request: pb.StreamRequest) -> Change:
    which = request.WhichOneof("input")
    return Change(text=request.text if which == "text" else None,
                  edit=(request.edit.delete, request.edit.insert) if which == "edit" else None, send=request.send,
                  accepted=request.accepted)


# ---- the data plane -> protobuf ---------------------------------------------------------

def kind_of(c: Candidate) -> int:
    if c.correction:
        return pb.Suggestion.CORRECTION
    return pb.Suggestion.COMPLETION if c.completion else pb.Suggestion.NEXT_WORD


def to_proto(suggestions: list[Candidate], with_probability: bool) -> list[pb.Suggestion]:
    return [pb.Suggestion(text=s.text, kind=kind_of(s), probability=math.exp(s.logprob) if with_probability else 0.0)
            for s in suggestions]


def autocorrect_proto(fix: Autocorrect | None) -> pb.Autocorrect | None:
    if fix is None:
        return None
    return pb.Autocorrect(original=fix.original, replacement=fix.replacement, confidence=fix.confidence,
                          separator_length=fix.separator_length)


def learned_proto(learned: Learned | None) -> pb.LearnResponse | None:
    return None if learned is None else pb.LearnResponse(words=learned.words, outcome=OUTCOMES[learned.outcome])


def response_of(answer: Answer, options: pb.PredictOptions, sequence: int = 0) -> pb.PredictResponse:
    name, version = answer.model
    return pb.PredictResponse(suggestions=to_proto(answer.strip.candidates, options.include_probability),
                              autocorrect=autocorrect_proto(answer.strip.autocorrect), model_name=name,
                              model_version=version, sequence=sequence, learned=learned_proto(answer.learned))


def export_pages(snapshot: Snapshot, page_bytes: int):
    """ExportResponse messages of at most about `page_bytes` each, holding between them every
    entry and suppressed word of the snapshot (one message for an empty one)."""
    page, size = pb.ExportResponse(), 0
    items = [("entries", pb.ExportResponse.Entry(text=e, count=c, last_seen=seen))
             for e, (c, seen) in sorted(snapshot.entries.items())]
    items += [("suppressed", word) for word in sorted(snapshot.suppressed)]
    for field, item in items:
        cost = (item.ByteSize() if field == "entries" else len(item.encode())) + 8  # + tag and length
        if size + cost > page_bytes and size:
            yield page
            page, size = pb.ExportResponse(), 0
        getattr(page, field).append(item)
        size += cost
    yield page


def _numbers(figures) -> dict[str, float]:
    return {k: float(v) for k, v in (figures or {}).items() if isinstance(v, (int, float))}


def answers_errors(handler):
    """A unary handler whose domain errors become their gRPC status (STATUS), a bug's INTERNAL."""
    @functools.wraps(handler)
    async def handle(self, request, context):
        try:
            return await handler(self, request, context)
        except Exception as e:
            await self._fail(context, e)
    return handle


class NextWordServicer(pb_grpc.NextWordServicer):
    def __init__(self, plane: DataPlane, max_message_bytes: int):
        self.plane, self.max_message_bytes = plane, max_message_bytes
        self.page_bytes = min(32 * 1024, max_message_bytes // 2)  # an ExportStream page: well inside a message

    async def _fail(self, context, error: Exception):
        """Answer with the error's status (abort raises, ending the call)."""
        code = status_for(error)
        if code == grpc.StatusCode.INTERNAL:  # a bug: the details stay in the log, not the answer
            log.error("internal error: %s", type(error).__name__, exc_info=error)
        await context.abort(code, "internal error" if code == grpc.StatusCode.INTERNAL else str(error))

    @answers_errors
    async def Predict(self, request, context):
        answer = await self.plane.predict(request.text, ask_of(request.max_suggestions, request.options))
        return response_of(answer, request.options)

    @answers_errors
    async def Learn(self, request, context):
        return learned_proto(await self.plane.learn(request.user, request.text))

    @answers_errors
    async def Forget(self, request, context):
        forgotten = await self.plane.forget(request.user, request.word)
        return pb.ForgetResponse(wiped=forgotten.wiped)

    @answers_errors
    async def Export(self, request, context):
        whole = next(export_pages(await self.plane.export(request.user), math.inf))
        if whole.ByteSize() > self.max_message_bytes:
            raise TooLarge(f"the export is {whole.ByteSize():,} bytes, more than one message may hold "
                           f"({self.max_message_bytes:,}): use ExportStream (nextword user-export does)")
        return whole

    async def ExportStream(self, request, context):
        try:
            for page in export_pages(await self.plane.export(request.user), self.page_bytes):
                yield page
        except Exception as e:
            await self._fail(context, e)

    @answers_errors
    async def Import(self, request, context):
        learned, refused = await self.plane.import_words(request.user, [(w.word, w.count) for w in request.words])
        return pb.ImportResponse(words=learned.words, outcome=OUTCOMES[learned.outcome], refused=refused)

    @answers_errors
    async def GetModelInfo(self, request, context):
        info = self.plane.model_info()
        return pb.ModelInfo(
            name=info["name"], version=info["version"], vocab_size=info["vocab_size"],
            execution_provider=info["provider"], tokenizer_version=info["tokenizer_version"],
            evaluation=_numbers(info["evaluation"]), baseline_evaluation=_numbers(info["baseline_evaluation"]),
            max_suggestions=info["max_suggestions"])

    @answers_errors
    async def Ping(self, request, context):
        self.plane.admit()
        return pb.PingResponse()

    async def PredictStream(self, request_iterator, context):
        # Read the first message before any refusal: a client still writing into a stream
        # the server has already closed sees its write fail as INTERNAL, hiding our status.
        requests = request_iterator.__aiter__()
        request = await _next(requests)
        if request is None:
            return
        try:
            with self.plane.typing() as typing:
                while request is not None:
                    answer = await typing.keystroke(change_of(request), ask_of(request.max_suggestions, request.options))
                    yield response_of(answer, request.options, request.sequence)
                    request = await typing.next(_next(requests))
        except grpc.aio.AbortError:
            raise  # already answered with its status (e.g. a message that did not decode)
        except Exception as e:
            await self._fail(context, e)


async def _next(requests):
    """A stream's next request, None at its end."""
    try:
        return await requests.__anext__()
    except StopAsyncIteration:
        return None
