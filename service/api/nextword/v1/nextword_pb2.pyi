from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PredictOptions(_message.Message):
    __slots__ = ("include_probability", "keyboard_layout", "exact_only", "user", "incognito")
    INCLUDE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    KEYBOARD_LAYOUT_FIELD_NUMBER: _ClassVar[int]
    EXACT_ONLY_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    INCOGNITO_FIELD_NUMBER: _ClassVar[int]
    include_probability: bool
    keyboard_layout: str
    exact_only: bool
    user: str
    incognito: bool
    def __init__(self, include_probability: _Optional[bool] = ..., keyboard_layout: _Optional[str] = ..., exact_only: _Optional[bool] = ..., user: _Optional[str] = ..., incognito: _Optional[bool] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("text", "max_suggestions", "options")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    MAX_SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    text: str
    max_suggestions: int
    options: PredictOptions
    def __init__(self, text: _Optional[str] = ..., max_suggestions: _Optional[int] = ..., options: _Optional[_Union[PredictOptions, _Mapping]] = ...) -> None: ...

class Suggestion(_message.Message):
    __slots__ = ("text", "probability", "kind")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[Suggestion.Kind]
        NEXT_WORD: _ClassVar[Suggestion.Kind]
        COMPLETION: _ClassVar[Suggestion.Kind]
        CORRECTION: _ClassVar[Suggestion.Kind]
    KIND_UNSPECIFIED: Suggestion.Kind
    NEXT_WORD: Suggestion.Kind
    COMPLETION: Suggestion.Kind
    CORRECTION: Suggestion.Kind
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    text: str
    probability: float
    kind: Suggestion.Kind
    def __init__(self, text: _Optional[str] = ..., probability: _Optional[float] = ..., kind: _Optional[_Union[Suggestion.Kind, str]] = ...) -> None: ...

class Autocorrect(_message.Message):
    __slots__ = ("original", "replacement", "confidence", "separator_length")
    ORIGINAL_FIELD_NUMBER: _ClassVar[int]
    REPLACEMENT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SEPARATOR_LENGTH_FIELD_NUMBER: _ClassVar[int]
    original: str
    replacement: str
    confidence: float
    separator_length: int
    def __init__(self, original: _Optional[str] = ..., replacement: _Optional[str] = ..., confidence: _Optional[float] = ..., separator_length: _Optional[int] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("suggestions", "model_name", "model_version", "sequence", "autocorrect", "learned")
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    AUTOCORRECT_FIELD_NUMBER: _ClassVar[int]
    LEARNED_FIELD_NUMBER: _ClassVar[int]
    suggestions: _containers.RepeatedCompositeFieldContainer[Suggestion]
    model_name: str
    model_version: str
    sequence: int
    autocorrect: Autocorrect
    learned: LearnResponse
    def __init__(self, suggestions: _Optional[_Iterable[_Union[Suggestion, _Mapping]]] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., sequence: _Optional[int] = ..., autocorrect: _Optional[_Union[Autocorrect, _Mapping]] = ..., learned: _Optional[_Union[LearnResponse, _Mapping]] = ...) -> None: ...

class TextEdit(_message.Message):
    __slots__ = ("delete", "insert")
    DELETE_FIELD_NUMBER: _ClassVar[int]
    INSERT_FIELD_NUMBER: _ClassVar[int]
    delete: int
    insert: str
    def __init__(self, delete: _Optional[int] = ..., insert: _Optional[str] = ...) -> None: ...

class StreamRequest(_message.Message):
    __slots__ = ("text", "edit", "max_suggestions", "options", "sequence", "send", "accepted")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    EDIT_FIELD_NUMBER: _ClassVar[int]
    MAX_SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SEND_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    text: str
    edit: TextEdit
    max_suggestions: int
    options: PredictOptions
    sequence: int
    send: bool
    accepted: bool
    def __init__(self, text: _Optional[str] = ..., edit: _Optional[_Union[TextEdit, _Mapping]] = ..., max_suggestions: _Optional[int] = ..., options: _Optional[_Union[PredictOptions, _Mapping]] = ..., sequence: _Optional[int] = ..., send: _Optional[bool] = ..., accepted: _Optional[bool] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "version", "vocab_size", "execution_provider", "evaluation", "baseline_evaluation", "tokenizer_version", "max_suggestions")
    class EvaluationEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class BaselineEvaluationEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VOCAB_SIZE_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    BASELINE_EVALUATION_FIELD_NUMBER: _ClassVar[int]
    TOKENIZER_VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    vocab_size: int
    execution_provider: str
    evaluation: _containers.ScalarMap[str, float]
    baseline_evaluation: _containers.ScalarMap[str, float]
    tokenizer_version: str
    max_suggestions: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., vocab_size: _Optional[int] = ..., execution_provider: _Optional[str] = ..., evaluation: _Optional[_Mapping[str, float]] = ..., baseline_evaluation: _Optional[_Mapping[str, float]] = ..., tokenizer_version: _Optional[str] = ..., max_suggestions: _Optional[int] = ...) -> None: ...

class LearnRequest(_message.Message):
    __slots__ = ("user", "text")
    USER_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    user: str
    text: str
    def __init__(self, user: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class LearnResponse(_message.Message):
    __slots__ = ("words", "outcome")
    class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OUTCOME_UNSPECIFIED: _ClassVar[LearnResponse.Outcome]
        LEARNED: _ClassVar[LearnResponse.Outcome]
        NOTHING_TO_LEARN: _ClassVar[LearnResponse.Outcome]
        STORE_DOWN: _ClassVar[LearnResponse.Outcome]
        BUSY: _ClassVar[LearnResponse.Outcome]
        INCOGNITO: _ClassVar[LearnResponse.Outcome]
    OUTCOME_UNSPECIFIED: LearnResponse.Outcome
    LEARNED: LearnResponse.Outcome
    NOTHING_TO_LEARN: LearnResponse.Outcome
    STORE_DOWN: LearnResponse.Outcome
    BUSY: LearnResponse.Outcome
    INCOGNITO: LearnResponse.Outcome
    WORDS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    words: int
    outcome: LearnResponse.Outcome
    def __init__(self, words: _Optional[int] = ..., outcome: _Optional[_Union[LearnResponse.Outcome, str]] = ...) -> None: ...

class ForgetRequest(_message.Message):
    __slots__ = ("user", "word")
    USER_FIELD_NUMBER: _ClassVar[int]
    WORD_FIELD_NUMBER: _ClassVar[int]
    user: str
    word: str
    def __init__(self, user: _Optional[str] = ..., word: _Optional[str] = ...) -> None: ...

class ForgetResponse(_message.Message):
    __slots__ = ("wiped",)
    WIPED_FIELD_NUMBER: _ClassVar[int]
    wiped: bool
    def __init__(self, wiped: _Optional[bool] = ...) -> None: ...

class ExportRequest(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: str
    def __init__(self, user: _Optional[str] = ...) -> None: ...

class ExportResponse(_message.Message):
    __slots__ = ("entries", "suppressed")
    class Entry(_message.Message):
        __slots__ = ("text", "count", "last_seen")
        TEXT_FIELD_NUMBER: _ClassVar[int]
        COUNT_FIELD_NUMBER: _ClassVar[int]
        LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
        text: str
        count: int
        last_seen: float
        def __init__(self, text: _Optional[str] = ..., count: _Optional[int] = ..., last_seen: _Optional[float] = ...) -> None: ...
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[ExportResponse.Entry]
    suppressed: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, entries: _Optional[_Iterable[_Union[ExportResponse.Entry, _Mapping]]] = ..., suppressed: _Optional[_Iterable[str]] = ...) -> None: ...

class ImportRequest(_message.Message):
    __slots__ = ("user", "words")
    class Word(_message.Message):
        __slots__ = ("word", "count")
        WORD_FIELD_NUMBER: _ClassVar[int]
        COUNT_FIELD_NUMBER: _ClassVar[int]
        word: str
        count: int
        def __init__(self, word: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...
    USER_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    user: str
    words: _containers.RepeatedCompositeFieldContainer[ImportRequest.Word]
    def __init__(self, user: _Optional[str] = ..., words: _Optional[_Iterable[_Union[ImportRequest.Word, _Mapping]]] = ...) -> None: ...

class ImportResponse(_message.Message):
    __slots__ = ("words", "outcome", "refused")
    WORDS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    words: int
    outcome: LearnResponse.Outcome
    refused: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, words: _Optional[int] = ..., outcome: _Optional[_Union[LearnResponse.Outcome, str]] = ..., refused: _Optional[_Iterable[str]] = ...) -> None: ...

class PingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PingResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
