#include "EdgegapAgent.h"

#include "HttpModule.h"
#include "Interfaces/IHttpRequest.h"
#include "Interfaces/IHttpResponse.h"
#include "Policies/CondensedJsonPrintPolicy.h"
#include "Serialization/JsonSerializer.h"
#include "Serialization/JsonWriter.h"
#include "Containers/StringConv.h"

FTSTicker::FDelegateHandle FEdgegapAgent::HeartbeatHandle;

// Set by the agent for the game it starts: http://127.0.0.1:7070 unless the agent's
// --api-addr says otherwise. Empty when the server runs without the agent (editor, local
// tests): every call is then a no-op.
static FString AgentUrl() { return FPlatformMisc::GetEnvironmentVariable(TEXT("EDGEGAP_AGENT_URL")); }

// Set only when the agent has --api-token: POST routes then need it as a bearer token.
static void Authorize(const TSharedRef<IHttpRequest, ESPMode::ThreadSafe>& Request)
{
	const FString Token = FPlatformMisc::GetEnvironmentVariable(TEXT("EDGEGAP_AGENT_API_TOKEN"));
	if (!Token.IsEmpty()) Request->SetHeader(TEXT("Authorization"), TEXT("Bearer ") + Token);
}

void FEdgegapAgent::FetchDeployment(TFunction<void(const FString& Json)> OnJson)
{
	if (AgentUrl().IsEmpty()) { OnJson(FString()); return; }
	TSharedRef<IHttpRequest, ESPMode::ThreadSafe> Request = FHttpModule::Get().CreateRequest();
	Request->SetURL(AgentUrl() + TEXT("/v1/deployment"));
	Request->SetVerb(TEXT("GET"));
	Authorize(Request);
	Request->OnProcessRequestComplete().BindLambda(
		[OnJson](FHttpRequestPtr, FHttpResponsePtr Response, bool bOk)
		{
			// request_id, public_ip, ports[{name, internal, external, protocol, join_address}]:
			// parse with FJsonSerializer::Deserialize if you need fields.
			const bool bGood = bOk && Response.IsValid() && Response->GetResponseCode() == 200;
			if (!bGood) UE_LOG(LogTemp, Warning, TEXT("Edgegap agent unreachable; carrying on"));
			OnJson(bGood ? Response->GetContentAsString() : FString());
		});
	Request->ProcessRequest();
}

void FEdgegapAgent::MarkReady() { Post(TEXT("/v1/ready"), MakeShared<FJsonObject>()); }

void FEdgegapAgent::StartHeartbeats(float IntervalSeconds)
{
	if (AgentUrl().IsEmpty() || HeartbeatHandle.IsValid()) return;
	HeartbeatHandle = FTSTicker::GetCoreTicker().AddTicker(
		FTickerDelegate::CreateLambda([](float /*DeltaTime*/) -> bool
		{
			Post(TEXT("/v1/heartbeat"), MakeShared<FJsonObject>());
			return true; // keep ticking
		}),
		IntervalSeconds);
}

void FEdgegapAgent::StopHeartbeats()
{
	if (!HeartbeatHandle.IsValid()) return;
	FTSTicker::RemoveTicker(HeartbeatHandle);
	HeartbeatHandle.Reset();
}

void FEdgegapAgent::PlayerConnected(const FString& PlayerId)
{
	TSharedRef<FJsonObject> Body = MakeShared<FJsonObject>();
	Body->SetStringField(TEXT("id"), PlayerId);
	Post(TEXT("/v1/players/connect"), Body);
}

void FEdgegapAgent::PlayerDisconnected(const FString& PlayerId)
{
	TSharedRef<FJsonObject> Body = MakeShared<FJsonObject>();
	Body->SetStringField(TEXT("id"), PlayerId);
	Post(TEXT("/v1/players/disconnect"), Body);
}

void FEdgegapAgent::EndMatch(const FString& Reason, const FString& Delay)
{
	// The agent refuses a reason over 512 bytes (400, and the match would not end): keep it to
	// 120 characters (at most 480 bytes of UTF-8), not cutting a UTF-16 surrogate pair in two.
	const int32 MaxReasonChars = 120;
	FString Short = Reason.Left(MaxReasonChars);
	if (Short.Len() == MaxReasonChars && StringConv::IsHighSurrogate(static_cast<uint32>(Short[MaxReasonChars - 1])))
	{
		Short.LeftChopInline(1);
	}
	TSharedRef<FJsonObject> Body = MakeShared<FJsonObject>();
	Body->SetStringField(TEXT("reason"), Short);
	Body->SetStringField(TEXT("delay"), Delay);
	Post(TEXT("/v1/match/end"), Body);
}

void FEdgegapAgent::Post(const FString& Path, const TSharedRef<FJsonObject>& Body)
{
	if (AgentUrl().IsEmpty()) return;
	// TJsonWriter escapes `"`, `\` and control characters; SetContentAsString sends UTF-8.
	FString Json;
	const TSharedRef<TJsonWriter<TCHAR, TCondensedJsonPrintPolicy<TCHAR>>> Writer =
		TJsonWriterFactory<TCHAR, TCondensedJsonPrintPolicy<TCHAR>>::Create(&Json);
	FJsonSerializer::Serialize(Body, Writer);

	TSharedRef<IHttpRequest, ESPMode::ThreadSafe> Request = FHttpModule::Get().CreateRequest();
	Request->SetURL(AgentUrl() + Path);
	Request->SetVerb(TEXT("POST"));
	Request->SetHeader(TEXT("Content-Type"), TEXT("application/json"));
	Authorize(Request);
	Request->SetContentAsString(Json);
	Request->OnProcessRequestComplete().BindLambda(
		[Path](FHttpRequestPtr, FHttpResponsePtr Response, bool bOk)
		{
			if (!bOk || !Response.IsValid() || Response->GetResponseCode() >= 300)
				UE_LOG(LogTemp, Warning, TEXT("Edgegap agent %s failed: %s"), *Path,
					Response.IsValid() ? *Response->GetContentAsString() : TEXT("no answer"));
		});
	Request->ProcessRequest();
}
