# Talks to edgegap-agent, the entrypoint of this server's container, over its localhost API.
# Register as an autoload (Project Settings > Autoload) named EdgegapAgent; server export only.
#
# Lifecycle hooks:
#   _ready()                    -> reads the deployment context (the autoload starts first)
#   EdgegapAgent.mark_ready()   -> once your ENetMultiplayerPeer.create_server() succeeded
#   EdgegapAgent.end_match(r)   -> when the match is over: the agent self-stops the deployment
#                                  and sends SIGTERM after the delay
# SIGTERM: Godot gives scripts no SIGTERM hook (godot-proposals#1361): the default action ends
# the process. So save *before* calling end_match() (its delay is your time to finish), or run
# the agent with --pre-stop pointing at a save command.
extends Node

signal deployment_received(context: Dictionary)

var base_url := OS.get_environment("EDGEGAP_AGENT_URL")  # e.g. http://127.0.0.1:8899
var token := OS.get_environment("EDGEGAP_AGENT_API_TOKEN")
var deployment := {}  # request_id, public_ip, ports[{name, internal, external, protocol, join_address}]

func _ready() -> void:
	if base_url.is_empty():
		return  # not under the agent (editor, local run)
	var http := HTTPRequest.new()
	add_child(http)
	http.request_completed.connect(func(result, code, _headers, body):
		if result == HTTPRequest.RESULT_SUCCESS and code == 200:
			deployment = JSON.parse_string(body.get_string_from_utf8())
			deployment_received.emit(deployment)
		else:
			push_warning("Edgegap agent unreachable; carrying on")
		http.queue_free())
	http.request(base_url + "/v1/deployment")

func mark_ready() -> void:
	_post("/v1/ready", {})

func end_match(reason: String, delay := "5s") -> void:
	_post("/v1/match/end", {"reason": reason, "delay": delay})

func _post(path: String, body: Dictionary) -> void:
	if base_url.is_empty():
		return
	var headers := PackedStringArray(["Content-Type: application/json"])
	if not token.is_empty():
		headers.append("Authorization: Bearer " + token)
	var http := HTTPRequest.new()
	add_child(http)
	http.request_completed.connect(func(_result, code, _headers, _body):
		if code < 200 or code >= 300:
			push_warning("Edgegap agent %s answered %d" % [path, code])
		http.queue_free())
	http.request(base_url + path, headers, HTTPClient.METHOD_POST, JSON.stringify(body))
