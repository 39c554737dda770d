from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class PublishRequest(_message.Message):
    __slots__ = ("session_id", "type", "data_json", "correlation_id", "idempotency_key")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    type: str
    data_json: str
    correlation_id: str
    idempotency_key: str
    def __init__(self, session_id: _Optional[str] = ..., type: _Optional[str] = ..., data_json: _Optional[str] = ..., correlation_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class PublishResponse(_message.Message):
    __slots__ = ("session_id", "seq", "epoch", "duplicate")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    seq: int
    epoch: str
    duplicate: bool
    def __init__(self, session_id: _Optional[str] = ..., seq: _Optional[int] = ..., epoch: _Optional[str] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class GetStateRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class State(_message.Message):
    __slots__ = ("session_id", "version", "seq", "state_json")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    STATE_JSON_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    version: int
    seq: int
    state_json: str
    def __init__(self, session_id: _Optional[str] = ..., version: _Optional[int] = ..., seq: _Optional[int] = ..., state_json: _Optional[str] = ...) -> None: ...

class UpdateStateRequest(_message.Message):
    __slots__ = ("session_id", "patch_json", "expected_version")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PATCH_JSON_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    patch_json: str
    expected_version: int
    def __init__(self, session_id: _Optional[str] = ..., patch_json: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("session_id", "after_seq", "epoch")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    after_seq: int
    epoch: str
    def __init__(self, session_id: _Optional[str] = ..., after_seq: _Optional[int] = ..., epoch: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("session_id", "seq", "type", "frame_json", "epoch")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    FRAME_JSON_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    seq: int
    type: str
    frame_json: str
    epoch: str
    def __init__(self, session_id: _Optional[str] = ..., seq: _Optional[int] = ..., type: _Optional[str] = ..., frame_json: _Optional[str] = ..., epoch: _Optional[str] = ...) -> None: ...

class ToolRequest(_message.Message):
    __slots__ = ("tool_id", "operation", "parameters", "session_id", "tool_call_id", "parameters_json")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TOOL_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_JSON_FIELD_NUMBER: _ClassVar[int]
    tool_id: str
    operation: str
    parameters: _containers.ScalarMap[str, str]
    session_id: str
    tool_call_id: str
    parameters_json: str
    def __init__(self, tool_id: _Optional[str] = ..., operation: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ..., session_id: _Optional[str] = ..., tool_call_id: _Optional[str] = ..., parameters_json: _Optional[str] = ...) -> None: ...

class ToolResponse(_message.Message):
    __slots__ = ("success", "result", "error", "session_id", "tool_call_id", "replayed")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    success: bool
    result: str
    error: str
    session_id: str
    tool_call_id: str
    replayed: bool
    def __init__(self, success: _Optional[bool] = ..., result: _Optional[str] = ..., error: _Optional[str] = ..., session_id: _Optional[str] = ..., tool_call_id: _Optional[str] = ..., replayed: _Optional[bool] = ...) -> None: ...

class TaskChunk(_message.Message):
    __slots__ = ("task_id", "content", "is_final", "session_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    IS_FINAL_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    content: str
    is_final: bool
    session_id: str
    def __init__(self, task_id: _Optional[str] = ..., content: _Optional[str] = ..., is_final: _Optional[bool] = ..., session_id: _Optional[str] = ...) -> None: ...

class TaskResponse(_message.Message):
    __slots__ = ("task_id", "output", "success", "error", "metadata", "session_id")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    output: str
    success: bool
    error: str
    metadata: _containers.ScalarMap[str, str]
    session_id: str
    def __init__(self, task_id: _Optional[str] = ..., output: _Optional[str] = ..., success: _Optional[bool] = ..., error: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., session_id: _Optional[str] = ...) -> None: ...
