// Talks to edgegap-agent, the entrypoint of this server's container, over its localhost API:
// the same calls as the example game server (examples/game_server.rs).
// Add it to a GameObject in the server's first scene (a dedicated server build only).
//
// Lifecycle hooks:
//   Start()                       -> reads the deployment context (join address for your
//                                    backend or logs) and starts the heartbeat timer
//   MarkReady()                   -> once the server listens and the map is loaded (the agent
//                                    only lets the match clock and idle timers run from then on)
//   PlayerConnected(id)           -> from your transport's connect callback, e.g. Netcode for
//   PlayerDisconnected(id)           GameObjects' NetworkManager.OnClientConnectedCallback /
//                                    OnClientDisconnectCallback, Mirror's OnServerConnect /
//                                    OnServerDisconnect (the agent's --idle-timeout and
//                                    --empty-timeout count these)
//   EndMatch("reason")            -> when the match is over; the agent self-stops the deployment
//                                    and sends SIGTERM after `delay`, so save before or in
//                                    OnApplicationQuit
// Heartbeats go out every HeartbeatSeconds from the main thread (InvokeRepeating): with the
// agent's --heartbeat-timeout, a hung main loop stops them and the agent kills the server.
// SIGTERM: the agent forwards the platform's SIGTERM to the player. Check that your Unity
// version's Linux player turns it into an orderly quit (OnApplicationQuit); if not, save before
// calling EndMatch, whose delay is your time to finish.
//
// Bodies are written by JsonUtility.ToJson from [Serializable] classes, never by hand: a reason
// or a player id with quotes, backslashes, newlines or emoji is still valid JSON.
using System;
using System.Collections;
using UnityEngine;
using UnityEngine.Networking;

public class EdgegapAgent : MonoBehaviour
{
    // Set by the agent for the game it starts: http://127.0.0.1:7070 unless the agent's
    // --api-addr says otherwise. Unset when the server runs without the agent (editor, local
    // runs): every call is then a no-op.
    static readonly string BaseUrl = Environment.GetEnvironmentVariable("EDGEGAP_AGENT_URL");
    // Set only when the agent has --api-token: POST routes then need it as a bearer token.
    static readonly string Token = Environment.GetEnvironmentVariable("EDGEGAP_AGENT_API_TOKEN");

    [Tooltip("Seconds between heartbeats; keep it well under the agent's --heartbeat-timeout.")]
    public float HeartbeatSeconds = 5f;

    public string DeploymentJson { get; private set; }

    [Serializable]
    class MatchEndBody
    {
        public string reason;
        public string delay;
    }

    [Serializable]
    class PlayerBody
    {
        public string id;
    }

    IEnumerator Start()
    {
        if (string.IsNullOrEmpty(BaseUrl)) yield break; // not under the agent (editor, local run)
        InvokeRepeating(nameof(SendHeartbeat), HeartbeatSeconds, HeartbeatSeconds);
        using (var request = UnityWebRequest.Get(BaseUrl + "/v1/deployment"))
        {
            if (!string.IsNullOrEmpty(Token)) request.SetRequestHeader("Authorization", "Bearer " + Token);
            yield return request.SendWebRequest();
            if (request.result == UnityWebRequest.Result.Success)
            {
                // request_id, public_ip, ports[{name, internal, external, protocol, join_address}]
                DeploymentJson = request.downloadHandler.text;
                Debug.Log("Edgegap deployment: " + DeploymentJson);
            }
            else Debug.LogWarning("Edgegap agent unreachable: " + request.error); // keep serving
        }
    }

    public void MarkReady() => StartCoroutine(Post("/v1/ready", "{}"));

    void SendHeartbeat() => StartCoroutine(Post("/v1/heartbeat", "{}"));

    public void PlayerConnected(string id) =>
        StartCoroutine(Post("/v1/players/connect", JsonUtility.ToJson(new PlayerBody { id = id })));

    public void PlayerDisconnected(string id) =>
        StartCoroutine(Post("/v1/players/disconnect", JsonUtility.ToJson(new PlayerBody { id = id })));

    // The agent refuses a reason over 512 bytes (400, and the match would not end): keep it to
    // 120 UTF-16 units (at most 480 bytes of UTF-8), not cutting a surrogate pair in two.
    const int MaxReasonChars = 120;

    public void EndMatch(string reason, string delay = "5s")
    {
        if (reason != null && reason.Length > MaxReasonChars)
        {
            int cut = char.IsHighSurrogate(reason[MaxReasonChars - 1]) ? MaxReasonChars - 1 : MaxReasonChars;
            reason = reason.Substring(0, cut);
        }
        StartCoroutine(Post("/v1/match/end",
            JsonUtility.ToJson(new MatchEndBody { reason = reason, delay = delay })));
    }

    IEnumerator Post(string path, string json)
    {
        if (string.IsNullOrEmpty(BaseUrl)) yield break;
        using (var request = new UnityWebRequest(BaseUrl + path, "POST"))
        {
            request.uploadHandler = new UploadHandlerRaw(System.Text.Encoding.UTF8.GetBytes(json));
            request.downloadHandler = new DownloadHandlerBuffer();
            request.SetRequestHeader("Content-Type", "application/json");
            if (!string.IsNullOrEmpty(Token)) request.SetRequestHeader("Authorization", "Bearer " + Token);
            yield return request.SendWebRequest();
            if (request.result != UnityWebRequest.Result.Success)
                Debug.LogWarning($"Edgegap agent {path}: {request.responseCode} {request.error} {request.downloadHandler.text}");
        }
    }

    void OnApplicationQuit()
    {
        // An orderly quit (also after a forwarded SIGTERM): save here, within the grace period.
    }
}
