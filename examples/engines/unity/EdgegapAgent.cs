// Talks to edgegap-agent, the entrypoint of this server's container, over its localhost API.
// Add it to a GameObject in the server's first scene (a dedicated server build only).
//
// Lifecycle hooks:
//   Start()              -> read the deployment context (join address for your backend/logs)
//   MarkReady()          -> call once the server listens and the map is loaded (the agent only
//                           lets the match clock and idle timers run from then on)
//   EndMatch("reason")   -> call when the match is over; the agent self-stops the deployment
//                           and sends SIGTERM after `delay`, so save before or in OnApplicationQuit
// SIGTERM: the agent forwards the platform's SIGTERM to the player. Check that your Unity
// version's Linux player turns it into an orderly quit (OnApplicationQuit); if not, save before
// calling EndMatch, whose delay is your time to finish.
using System.Collections;
using UnityEngine;
using UnityEngine.Networking;

public class EdgegapAgent : MonoBehaviour
{
    // Set by the agent for the game it starts, e.g. "http://127.0.0.1:8899".
    static readonly string BaseUrl = System.Environment.GetEnvironmentVariable("EDGEGAP_AGENT_URL");
    static readonly string Token = System.Environment.GetEnvironmentVariable("EDGEGAP_AGENT_API_TOKEN");

    public string DeploymentJson { get; private set; }

    IEnumerator Start()
    {
        if (string.IsNullOrEmpty(BaseUrl)) yield break; // not under the agent (editor, local run)
        using (var request = UnityWebRequest.Get(BaseUrl + "/v1/deployment"))
        {
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

    public void EndMatch(string reason, string delay = "5s") =>
        StartCoroutine(Post("/v1/match/end",
            "{\"reason\":\"" + reason.Replace("\"", "'") + "\",\"delay\":\"" + delay + "\"}"));

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
                Debug.LogWarning($"Edgegap agent {path}: {request.responseCode} {request.error}");
        }
    }

    void OnApplicationQuit()
    {
        // An orderly quit (also after a forwarded SIGTERM): save here, within the grace period.
    }
}
