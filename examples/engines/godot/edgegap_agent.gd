# Talks to edgegap-agent, the entrypoint of this server's container, over its localhost API:
# the same calls as the example game server (examples/game_server.rs).
# Register as an autoload (Project Settings > Autoload) named EdgegapAgent; server export only.
#
# Lifecycle hooks:
#   _ready()                              -> reads the deployment context and starts the
#                                            heartbeat timer (the autoload starts first)
#   EdgegapAgent.mark_ready()             -> once your ENetMultiplayerPeer.create_server()
#                                            succeeded
#   EdgegapAgent.player_connected(id)     -> from multiplayer.peer_connected, and
#   EdgegapAgent.player_disconnected(id)     multiplayer.peer_disconnected, e.g.
#                                            multiplayer.peer_connected.connect(
#                                                func(peer): EdgegapAgent.player_connected(str(peer)))
#                                            (the agent's --idle-timeout and --empty-timeout
#                                            count these)
#   EdgegapAgent.end_match(reason)        -> when the match is over: the agent self-stops the
#                                            deployment and sends SIGTERM after the delay
# Heartbeats come from a Timer node, so they stop when the main loop hangs: with the agent's
# --heartbeat-timeout, the agent then kills the server.
# SIGTERM: Godot gives scripts no SIGTERM hook (godot-proposals#1361): the default action ends
# the process. So save *before* calling end_match() (its delay is your time to finish), or run
# the agent with --pre-stop pointing at a save command.
#
# Bodies are written by JSON.stringify from a Dictionary, never by hand. One gap in it: it
# writes U+000B as `\v` and leaves the other control characters below U+0020 (but \b \t \n \f
# \r) unescaped, and neither is JSON, so the agent would answer 400. _json_safe() replaces
# those characters with a space first.
extends Node

signal deployment_received(context: Dictionary)

const HEARTBEAT_SECONDS := 5.0  # keep it well under the agent's --heartbeat-timeout

# Set by the agent for the game it starts: http://127.0.0.1:7070 unless the agent's --api-addr
# says otherwise. Empty when the server runs without the agent (editor, local runs): every call
# is then a no-op.
var base_url := OS.get_environment("EDGEGAP_AGENT_URL")
# Set only when the agent has --api-token: POST routes then need it as a bearer token.
var token := OS.get_environment("EDGEGAP_AGENT_API_TOKEN")
var deployment := {}  # request_id, public_ip, ports[{name, internal, external, protocol, join_address}]
var _not_json_safe := RegEx.new()

func _ready() -> void:
	_not_json_safe.compile("[\\x00-\\x07\\x0B\\x0E-\\x1F]")
	if base_url.is_empty():
		return  # not under the agent (editor, local run)
	var timer := Timer.new()
	timer.wait_time = HEARTBEAT_SECONDS
	timer.timeout.connect(func(): _post("/v1/heartbeat", {}))
	add_child(timer)
	timer.start()
	var http := HTTPRequest.new()
	add_child(http)
	http.request_completed.connect(func(result, code, _response_headers, body):
		if result == HTTPRequest.RESULT_SUCCESS and code == 200:
			deployment = JSON.parse_string(body.get_string_from_utf8())
			deployment_received.emit(deployment)
		else:
			push_warning("Edgegap agent unreachable; carrying on")
		http.queue_free())
	http.request(base_url + "/v1/deployment", _headers())

func mark_ready() -> void:
	_post("/v1/ready", {})

func player_connected(id: String) -> void:
	_post("/v1/players/connect", {"id": _json_safe(id)})

func player_disconnected(id: String) -> void:
	_post("/v1/players/disconnect", {"id": _json_safe(id)})

# The agent refuses a reason over 512 bytes (400, and the match would not end): keep it to 120
# characters (Godot 4 strings are UTF-32: at most 480 bytes of UTF-8).
const MAX_REASON_CHARS := 120

func end_match(reason: String, delay := "5s") -> void:
	_post("/v1/match/end", {"reason": _json_safe(reason.left(MAX_REASON_CHARS)), "delay": delay})

func _json_safe(text: String) -> String:
	return _not_json_safe.sub(text, " ", true)

func _headers() -> PackedStringArray:
	var headers := PackedStringArray(["Content-Type: application/json"])
	if not token.is_empty():
		headers.append("Authorization: Bearer " + token)
	return headers

func _post(path: String, body: Dictionary) -> void:
	if base_url.is_empty():
		return
	var http := HTTPRequest.new()
	add_child(http)
	http.request_completed.connect(func(_result, code, _response_headers, response):
		if code < 200 or code >= 300:
			push_warning("Edgegap agent %s answered %d: %s" % [path, code, response.get_string_from_utf8()])
		http.queue_free())
	http.request(base_url + path, _headers(), HTTPClient.METHOD_POST, JSON.stringify(body))
