"""The gRPC servicer: protobuf in, domain calls, protobuf out. No model work here.

Domain errors become gRPC status codes in one place (`status_for`).
"""
from __future__ import annotations

import logging
import math

import grpc

from model.engine.suggest import Candidate
from model.engine.typos import Autocorrect
from service.api.nextword.v1 import nextword_pb2 as pb
from service.api.nextword.v1 import nextword_pb2_grpc as pb_grpc
from service.server.batching import Overloaded
from service.server.predictor import InvalidInput, Predictor, Strip
from service.server.security import UserKeyError, UserKeys
from service.server.users import ForgetFailed, Users

log = logging.getLogger("nextword.protocol")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["NextWord"].full_name


class StreamLimit(Exception):
    """Too many typing sessions open."""


class PersonalOff(Exception):
    """A request names a user on a server run with --user-store off."""


def status_for(error: Exception) -> grpc.StatusCode:
    if isinstance(error, UserKeyError):
        return error.code
    if isinstance(error, PersonalOff):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(error, ForgetFailed):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(error, InvalidInput):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(error, (Overloaded, StreamLimit)):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    return grpc.StatusCode.INTERNAL


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


class NextWordServicer(pb_grpc.NextWordServicer):
    def __init__(self, predictor: Predictor, metrics, max_streams: int,
                 users: Users | None = None, keys: UserKeys | None = None):
        self.predictor = predictor  # the current model: new calls and streams take it
        self.metrics, self.max_streams = metrics, max_streams
        self.users, self.keys = users, keys  # None: --user-store off
        self.open_streams = 0
        self.draining = False

    def swap(self, predictor: Predictor) -> None:
        """A new model for new calls; calls and streams already running keep theirs."""
        self.predictor = predictor

    def drain(self) -> None:
        """From now on new calls are refused (UNAVAILABLE); calls in flight go on."""
        self.draining = True

    async def _refuse_if_draining(self, context) -> None:
        if self.draining:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "server is shutting down; try again (another instance)")

    @staticmethod
    def _response(predictor, strip: Strip, options, sequence: int = 0) -> pb.PredictResponse:
        return pb.PredictResponse(suggestions=to_proto(strip.candidates, options.include_probability),
                                  autocorrect=autocorrect_proto(strip.autocorrect),
                                  model_name=predictor.model_name, model_version=predictor.model_version,
                                  sequence=sequence)

    def _user(self, key: str) -> str | None:
        """The store's id for a request's user key; None for no user."""
        if not key:
            return None
        if self.users is None:
            raise PersonalOff("this server keeps no users (--user-store off): send no user")
        return self.keys.store_id(key)

    async def _predict(self, predictor, text: str, request, cache=None) -> Strip:
        options = request.options
        user = self._user(options.user)
        model = await self.users.model(user) if user else None
        return await predictor.predict(text, request.max_suggestions, cache, layout=options.keyboard_layout,
                                       exact_only=options.exact_only, user=model)

    async def _learn(self, key: str, text: str) -> int:
        self.predictor.check_length(text)
        user = self._user(key)
        if user is None:
            raise InvalidInput("learning needs a user key")
        return await self.users.learn(user, text)

    async def Learn(self, request, context):
        await self._refuse_if_draining(context)
        try:
            words = await self._learn(request.user, request.text)
        except Exception as e:
            await self._fail(context, e)
        return pb.LearnResponse(words=words)

    async def Forget(self, request, context):
        await self._refuse_if_draining(context)
        try:
            user = self._user(request.user)
            if user is None:
                raise InvalidInput("forget needs a user key")
            await self.users.forget(user)
        except Exception as e:
            await self._fail(context, e)
        return pb.ForgetResponse()

    async def _fail(self, context, error: Exception):
        code = status_for(error)
        if code == grpc.StatusCode.INTERNAL:  # a bug: the details stay in the log, not the answer
            log.error("internal error: %s", type(error).__name__, exc_info=error)
        await context.abort(code, "internal error" if code == grpc.StatusCode.INTERNAL else str(error))

    async def Predict(self, request, context):
        await self._refuse_if_draining(context)
        with self.predictor.lease() as predictor:
            try:
                strip = await self._predict(predictor, request.text, request)
            except Exception as e:
                await self._fail(context, e)
            return self._response(predictor, strip, request.options)

    async def PredictStream(self, request_iterator, context):
        # Read the first message before any refusal: a client still writing into a stream
        # the server has already closed sees its write fail as INTERNAL, hiding our status.
        requests = request_iterator.__aiter__()
        try:
            first = await requests.__anext__()
        except StopAsyncIteration:
            return
        await self._refuse_if_draining(context)
        if self.open_streams >= self.max_streams:
            await self._fail(context, StreamLimit(f"server busy: {self.open_streams} typing sessions open"))
        self.open_streams += 1
        self.metrics.streams.inc()
        try:
            with self.predictor.lease() as predictor:  # a stream keeps the model it started with
                stream = predictor.new_stream()  # freed when the stream ends, however it ends
                request = first
                while True:
                    text = self._stream_text(stream, request)
                    if request.send:  # the message went out: learn it, start the next one
                        if request.options.user:
                            await self._learn(request.options.user, text)
                        text = stream.text = ""
                    strip = await self._predict(predictor, text, request, stream.cache)
                    yield self._response(predictor, strip, request.options, request.sequence)
                    try:
                        request = await requests.__anext__()
                    except StopAsyncIteration:
                        break
        except grpc.aio.AbortError:
            raise  # already answered with its status (e.g. a message that did not decode)
        except Exception as e:
            await self._fail(context, e)
        finally:
            self.open_streams -= 1
            self.metrics.streams.dec()

    @staticmethod
    def _stream_text(stream, request) -> str:
        which = request.WhichOneof("input")
        if which == "text":
            stream.text = request.text
        elif which == "edit":
            stream.apply_edit(request.edit.delete, request.edit.insert)
        elif not request.send:
            raise InvalidInput("stream message has neither text nor edit (nor send)")
        return stream.text

    async def GetModelInfo(self, request, context):
        await self._refuse_if_draining(context)
        info = self.predictor.model_info()
        return pb.ModelInfo(
            name=info["name"], version=info["version"], vocab_size=info["vocab_size"],
            execution_provider=info["provider"], tokenizer_version=info["tokenizer_version"],
            evaluation=_numbers(info["evaluation"]), baseline_evaluation=_numbers(info["baseline_evaluation"]),
            max_suggestions=info["max_suggestions"])

    async def Ping(self, request, context):
        await self._refuse_if_draining(context)
        return pb.PingResponse()


def _numbers(figures) -> dict[str, float]:
    return {k: float(v) for k, v in (figures or {}).items() if isinstance(v, (int, float))}
